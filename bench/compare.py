"""The baseline mode (`python -m bench --baseline [REV,...]`): earlier revisions, the ceiling
and the working tree, each through real gunicorn with its own bundled settings and its own
database, measured one after another in the same run on the same machine.

For every hot path and round, each target is measured in turn (the order rotates from round
to round, so none always runs first on a cold or warm machine): requests per second, the
workers' CPU time per request (from /proc, user + system), the ratio to the ceiling of the
same round and the ratio to the first baseline of the same round. The figures printed are
the medians over the rounds. Every target runs as a deployment does: 2 workers, `sync`, one
thread each unless --variant says otherwise, and its own defaults for everything else (the
database-backed throttle included).

`--memory N` then sends N mixed requests (the four hot paths in turn) to each target and
reports the largest worker's RSS at the half and at the end: the leak check."""

import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench import harness, releases
from bench.load import RequestSpec, run_load

RSS_GOAL_MB = 100


@dataclass
class Target:
    label: str
    runtime: harness.Runtime | None  # None: the ceiling
    prepared: harness.Prepared | None = None
    server: harness.Server | None = None


@dataclass
class Measurement:
    rps: float
    cpu_ms: float
    requests: int
    errors: int


@dataclass
class Row:
    scenario: str
    target: str
    rounds: list = field(default_factory=list)  # Measurement per round
    to_ceiling: list = field(default_factory=list)
    to_baseline: list = field(default_factory=list)


def targets_for(baselines: list[str]) -> list[Target]:
    targets = [Target("ceiling", None)]
    for revision in baselines:
        release = releases.install(revision)
        runtime = harness.Runtime(bin_dir=release.venv / "bin", cwd=release.venv,
                                  gunicorn_config=release.gunicorn_config,
                                  pythonpath=str(release.source) if release.source else None)
        targets.append(Target(release.label, runtime))
    targets.append(Target("working tree", harness.TREE))
    return targets


def measure(server: harness.Server, spec: RequestSpec, connections: int, duration: float,
            generator: str) -> Measurement:
    run_load(spec, connections, min(2.0, max(1.0, duration / 5)), generator)  # warm-up
    cpu_before = server.worker_cpu_seconds()
    figures = run_load(spec, connections, duration, generator)
    cpu = server.worker_cpu_seconds() - cpu_before
    requests = figures["requests"] or 1
    return Measurement(figures["rps"], 1000 * cpu / requests, figures["requests"], figures["errors"])


def database_for(base_url: str | None, workdir: Path, label: str, cleanups: list) -> str | None:
    """SQLite: None (each target makes its file in its own folder). PostgreSQL: a fresh
    database per target beside the one in --database-url, dropped at the end."""
    if not base_url:
        return None
    from bench.purge import fresh_postgres

    url, drop = fresh_postgres(base_url, "bench_" + "".join(c for c in label if c.isalnum())[:12].lower())
    cleanups.append(drop)
    return url


def start(targets: list[Target], database_url: str | None, workdir: Path, variant: str, cleanups: list) -> None:
    for index, target in enumerate(targets):
        folder = workdir / f"target{index}"
        folder.mkdir()
        if target.runtime is None:
            env = harness.portal_env("sqlite://", folder)
            target.server = harness.start_gunicorn("bench.ceiling:app", env, variant, folder, "/ping")
            continue
        url = database_for(database_url, folder, target.label, cleanups)
        target.prepared = harness.prepare(url, folder, ["opaque"], runtime=target.runtime)
        target.server = harness.start_gunicorn("wsgi:app", target.prepared.env, variant, folder, "/healthz",
                                               runtime=target.runtime)


def compare(targets: list[Target], scenarios: list[str], rounds: int, connections: int, duration: float,
            generator: str) -> list[Row]:
    ceiling, others = targets[0], targets[1:]
    baseline = others[0] if len(others) > 1 else None
    rows = []
    for scenario in harness.SCENARIOS:
        if scenario.name not in scenarios:
            continue
        by_target = {target.label: Row(scenario.name, target.label) for target in targets}
        for round_index in range(rounds):
            order = others[round_index % len(others):] + others[:round_index % len(others)]
            measured = {ceiling.label: measure(ceiling.server, RequestSpec("GET", ceiling.server.url + "/ping"),
                                               connections, duration, generator)}
            for target in order:
                spec = scenario.build(target.server.url, target.prepared, "opaque")
                harness.probe(spec)
                measured[target.label] = measure(target.server, spec, connections, duration, generator)
            for label, figures in measured.items():
                row = by_target[label]
                row.rounds.append(figures)
                row.to_ceiling.append(figures.rps / measured[ceiling.label].rps)
                if baseline is not None:
                    row.to_baseline.append(figures.rps / measured[baseline.label].rps)
        rows.extend(by_target.values())
    return rows


def leak_check(target: Target, total: int, connections: int, generator: str) -> tuple[float, float, int]:
    """Mixed requests in short slices until `total` are sent; the largest worker RSS (MB)
    after the first half and at the end."""
    specs = [scenario.build(target.server.url, target.prepared, "opaque") for scenario in harness.SCENARIOS]
    sent, half_rss, turn = 0, None, 0
    while sent < total:
        sent += run_load(specs[turn % len(specs)], connections, 2.0, generator)["requests"]
        turn += 1
        if half_rss is None and sent >= total / 2:
            half_rss = max(target.server.worker_rss().values())
    return half_rss, max(target.server.worker_rss().values()), sent


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def render(rows: list[Row], targets: list[Target], *, kind: str, variant: str, connections: int, duration: float,
           rounds: int, generator: str, memory: list) -> str:
    baseline = targets[1].label if len(targets) > 2 else None
    lines = [f"Tessera baseline comparison: {kind}, gunicorn {harness.WORKERS} workers ({variant}), "
             f"{connections} connections, {duration:g} s per measurement, median of {rounds} round(s), "
             f"load generator {generator}"]
    header = (f"{'path':<11} {'target':<26} {'req/s':>8} {'CPU ms/req':>10} {'÷ ceiling':>9} "
              f"{'÷ ' + (baseline or 'baseline'):>20}  rounds (÷ ceiling)")
    lines += ["", header, "-" * len(header)]
    for row in rows:
        rps = median([m.rps for m in row.rounds])
        cpu = median([m.cpu_ms for m in row.rounds])
        to_baseline = f"{median(row.to_baseline):.2f}" if row.to_baseline else "-"
        spread = ", ".join(f"{r:.2f}" for r in row.to_ceiling)
        errors = sum(m.errors for m in row.rounds)
        note = f"  {errors} errors" if errors else ""
        lines.append(f"{row.scenario:<11} {row.target[:26]:<26} {rps:>8.0f} {cpu:>10.2f} "
                     f"{median(row.to_ceiling):>9.2f} {to_baseline:>20}  {spread}{note}")
    if memory:
        lines += ["", f"Leak check (largest worker's RSS; goal under {RSS_GOAL_MB} MB, no growth in the second half):"]
        for label, (half, end, sent) in memory:
            verdict = "met" if end < RSS_GOAL_MB and end - half < 1.0 else "MISSED"
            lines.append(f"  {label:<26} {sent} requests: {half:.1f} MB at the half, {end:.1f} MB at the end "
                         f"({end - half:+.1f} MB)  {verdict}")
    return "\n".join(lines)


def run(*, baselines: list[str], database_url: str | None, scenarios: list[str], rounds: int, connections: int,
        duration: float, generator: str, variant: str, memory_requests: int) -> str:
    harness.install_signal_handlers()
    targets = targets_for(baselines)
    cleanups: list = []
    with tempfile.TemporaryDirectory(prefix="tessera-compare-") as tmp:
        try:
            start(targets, database_url, Path(tmp), variant, cleanups)
            rows = compare(targets, scenarios, rounds, connections, duration, generator)
            memory = [(target.label, leak_check(target, memory_requests, connections, generator))
                      for target in targets[1:]] if memory_requests else []
        finally:
            harness.stop_all()
            for cleanup in cleanups:
                cleanup()
    return render(rows, targets, kind="PostgreSQL" if database_url else "SQLite", variant=variant,
                  connections=connections, duration=duration, rounds=rounds, generator=generator, memory=memory)
