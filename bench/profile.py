"""Where a hot-path request spends its time: cProfile over N in-process requests.

    python -m bench.profile [--scenario api|introspect|userinfo|token] [--requests 2000]
                            [--format opaque|jwt] [--database-url URL] [--top 30]

Prepares a database as `python -m bench` does (portal init and the CLI), then sends the
requests through Flask's test client in this process, so gunicorn and the load generator
are not in the picture: what is left is the application's own cost per request.
"""

import argparse
import cProfile
import io
import os
import pstats
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench import harness


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=[s.name for s in harness.SCENARIOS], default="api")
    parser.add_argument("--format", choices=["opaque", "jwt"], default="opaque")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    parser.add_argument("--top", type=int, default=30, help="functions to print, by cumulative time")
    parser.add_argument("--sort", default="cumulative", help="pstats sort key (cumulative, tottime, ...)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="tessera-profile-") as workdir:
        prepared = harness.prepare(args.database_url, Path(workdir), [args.format])
        scenario = next(s for s in harness.SCENARIOS if s.name == args.scenario)
        spec = scenario.build("http://localhost", prepared, args.format)

        os.environ.update(prepared.env, ACCESS_TOKEN_FORMAT=args.format)  # configured as gunicorn would be
        from portal import create_app

        app = create_app()
        client = app.test_client()
        url = urlsplit(spec.url)
        path = url.path + (f"?{url.query}" if url.query else "")

        def send():
            response = client.open(path, method=spec.method, headers=spec.headers, data=spec.body)
            if response.status_code != 200:
                raise SystemExit(f"{spec.method} {path} answered {response.status_code}: {response.get_data(True)}")

        for _ in range(50):  # warm up: imports, caches, first connections
            send()
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for _ in range(args.requests):
            send()
        profiler.disable()
        elapsed = time.perf_counter() - started

    print(f"{scenario.label} ({args.format}): {args.requests} requests in process, "
          f"{elapsed / args.requests * 1000:.2f} ms each under the profiler")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(args.sort).print_stats(args.top)
    print(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
