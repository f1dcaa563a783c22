"""The table: scenario, req/s, p50, p99, ratio to the ceiling; then each worker's RSS."""

import os

from bench.harness import Prepared, Result

GOALS = {"api": 0.6, "userinfo": 0.6, "introspect": 0.5, "token": 0.4}
ADMIN_MEDIAN_GOAL_MS = 100
RSS_GOAL_MB = 100


def ceiling_of(results: list[Result], variant: str) -> float | None:
    for result in results:
        if result.variant == variant and result.scenario == "ceiling" and result.figures:
            return result.figures["rps"]
    return None


def goal_text(result: Result, ratio: float | None) -> str:
    if not result.figures:
        return ""
    if result.scenario in GOALS and ratio is not None:
        goal = GOALS[result.scenario]
        return f"{'met' if ratio >= goal else 'MISSED'} (>= {goal})"
    if result.scenario.startswith("admin-"):
        met = result.figures["p50_ms"] < ADMIN_MEDIAN_GOAL_MS
        return f"{'met' if met else 'MISSED'} (p50 < {ADMIN_MEDIAN_GOAL_MS} ms)"
    return ""


def render(prepared: Prepared, results: list[Result], memory: dict, *, connections: int, duration: float,
           generator: str) -> str:
    used = sorted({r.figures["generator"] for r in results if r.figures}) or [generator]
    lines = [
        f"Tessera benchmark: {os.cpu_count()} cores, {prepared.kind}, gunicorn 2 workers, "
        f"{connections} connections, {duration:g} s per scenario, load generator: {', '.join(used)}",
    ]
    lines += [f"  note: {note}" for note in prepared.notes]
    paired = [r.ceiling_rps for r in results if r.ceiling_rps]
    if paired:
        lines.append(f"  note: each hot scenario's ratio is to the ceiling measured just before it "
                     f"({min(paired):.0f}-{max(paired):.0f} req/s this run; the ceiling row is the first)")
    header = (f"{'variant':<8} {'scenario':<42} {'fmt':<6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>6}"
              "  goal / note")
    lines += ["", header, "-" * len(header)]
    for result in results:
        ceiling = result.ceiling_rps or ceiling_of(results, result.variant)
        if result.figures:
            f = result.figures
            ratio = f["rps"] / ceiling if ceiling else None
            ratio_text = f"{ratio:.2f}" if ratio is not None else "-"
            figures = f"{f['rps']:>8.0f} {f['p50_ms']:>8.1f} {f['p99_ms']:>8.1f} {ratio_text:>6}"
            note = "  ".join(x for x in (goal_text(result, ratio), result.note) if x)
        else:
            figures = f"{'-':>8} {'-':>8} {'-':>8} {'-':>6}"
            note = result.note or result.status
        lines.append(f"{result.variant:<8} {result.label[:42]:<42} {result.token_format:<6} {figures}  {note}")
    lines += ["", f"Worker RSS after the run (goal: each under {RSS_GOAL_MB} MB):"]
    for (variant, server), by_pid in memory.items():
        figures = ", ".join(f"pid {pid}: {mb:.1f} MB" for pid, mb in sorted(by_pid.items())) or "no workers found"
        worst = max(by_pid.values(), default=0)
        verdict = "" if server == "ceiling" else ("  met" if worst < RSS_GOAL_MB else "  MISSED")
        lines.append(f"  {variant:<8} {server:<16} {figures}{verdict}")
    return "\n".join(lines)
