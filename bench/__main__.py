"""`python -m bench` (= `make bench`): see docs/benchmark.md."""

import argparse
import sys
from pathlib import Path

from bench import harness, report
from bench.load import wrk_path


def comma_list(choices):
    def parse(text):
        items = [x.strip() for x in text.split(",") if x.strip()]
        unknown = sorted(set(items) - set(choices))
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {', '.join(unknown)}; choose from {', '.join(choices)}")
        return items
    return parse


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--database-url", help="a PostgreSQL URL (postgresql+psycopg://...) to prepare and use; "
                        "default: a fresh SQLite file in a temporary folder")
    parser.add_argument("--duration", type=float, default=10, help="seconds of load per scenario (default 10)")
    parser.add_argument("--scenarios", type=comma_list(harness.ALL_SCENARIO_NAMES),
                        default=list(harness.ALL_SCENARIO_NAMES),
                        help="comma-separated subset of: " + ", ".join(harness.ALL_SCENARIO_NAMES))
    parser.add_argument("--variants", type=comma_list(list(harness.VARIANTS)), default=list(harness.VARIANTS),
                        help="gunicorn worker classes: sync, gthread (default both)")
    parser.add_argument("--formats", type=comma_list(["opaque", "jwt"]), default=["opaque", "jwt"],
                        help="access-token formats to validate (default opaque,jwt)")
    parser.add_argument("--connections", type=int,
                        help="concurrent connections (default 4; 16 with --baseline)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure each hot scenario and its paired ceiling this many times and report the "
                        "round with the median ratio (default 1)")
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto",
                        help="auto: wrk when installed, else the Python keep-alive client")
    parser.add_argument("--skip-million", action="store_true",
                        help="skip filling 1,000,000 tokens (admin pages) and the 1,000,000-row purge")
    parser.add_argument("--million", type=int, default=1_000_000, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--baseline", nargs="?", const="", metavar="REV[,REV...]",
                        help="baseline mode: these earlier revisions (tags or commits; default: the last release), "
                        "the ceiling and the working tree, one after another in one run (bench/compare.py)")
    parser.add_argument("--memory", type=int, default=0, metavar="N",
                        help="with --baseline: then N mixed requests per target, and the workers' RSS (leak check)")
    args = parser.parse_args(argv)

    generator = args.generator if args.generator != "auto" else ("wrk" if wrk_path() else "python")
    if args.baseline is not None:
        from bench import compare, releases

        baselines = [r.strip() for r in args.baseline.split(",") if r.strip()] or [releases.last_release()]
        print(compare.run(baselines=baselines, database_url=args.database_url,
                          scenarios=[s for s in args.scenarios if s in {x.name for x in harness.SCENARIOS}],
                          rounds=args.rounds, connections=args.connections or 16, duration=args.duration,
                          generator=generator, variant=args.variants[0] if len(args.variants) == 1 else "sync",
                          memory_requests=args.memory))
        return 0
    args.connections = args.connections or 4
    load_scenarios = [s for s in args.scenarios if s != "purge"]
    if load_scenarios:
        prepared, results, memory = harness.run(
            database_url=args.database_url, duration=args.duration, scenarios=load_scenarios,
            variants=args.variants, formats=args.formats, connections=args.connections, generator=generator,
            skip_million=args.skip_million, million=args.million, rounds=args.rounds)
        print(report.render(prepared, results, memory, connections=args.connections, duration=args.duration,
                            generator=generator))
        if args.json:
            args.json.write_text(harness.results_json(prepared, results, memory))
    if "purge" in args.scenarios:
        from bench import purge

        rows = 50_000 if args.skip_million else args.million
        print()
        print(purge.render(purge.measure(args.database_url, rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
