"""Instructions per request of each hot path, counted by valgrind's callgrind: the same
count on every run, whatever else the machine is doing, so two versions of the code can
be compared on a noisy machine where requests/s cannot.

    python -m bench.instructions [--scenarios ceiling,api,introspect,userinfo,token]
                                 [--format opaque|jwt] [--requests 200] [--revision v0.1.0]

Each scenario runs in its own process under callgrind (Debian's valgrind; about 40 s
each): a database prepared as `python -m bench` does, 100 warm-up requests through the
WSGI app, then N measured ones. Only the measured loop is counted: it runs inside one
`map()` call, and callgrind collects only inside CPython's `map_next`. The ratio column
is the ceiling's count over the scenario's, in the spirit of the benchmark's ratios (it
leaves out gunicorn's and the load generator's share, which both sides pay).

`--revision` counts an earlier release instead (bench/releases.py: its source tree and its
venv's libraries on PYTHONPATH, before this venv's), to see where two versions differ; the verdict on
speed stays `python -m bench --baseline`, through real gunicorn.
"""

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from bench import harness

HOT = ["ceiling", "api", "introspect", "userinfo", "token"]


def measured_loop(scenario: str, token_format: str, count: int) -> None:
    """The child: build the app and the request, warm up, then the counted loop."""
    from werkzeug.test import EnvironBuilder

    from bench.load import RequestSpec

    with tempfile.TemporaryDirectory(prefix="tessera-instructions-") as workdir:
        runtime = harness.Runtime(pythonpath=os.environ.get("PYTHONPATH") or None)
        prepared = harness.prepare(None, Path(workdir), [token_format], runtime=runtime)
        os.environ.update(prepared.env, ACCESS_TOKEN_FORMAT=token_format)
        if scenario == "ceiling":
            from bench.ceiling import app

            spec = RequestSpec(method="GET", url="http://localhost/ping")
        else:
            from portal import create_app

            app = create_app(migrations=False)
            spec = next(s for s in harness.SCENARIOS if s.name == scenario).build(
                "http://localhost", prepared, token_format)
        url = urlsplit(spec.url)
        environ = EnvironBuilder(path=url.path, query_string=url.query, method=spec.method,
                                 headers=spec.headers, data=spec.body).get_environ()
        body = environ["wsgi.input"].read()
        statuses = []

        def send(_):
            request_environ = dict(environ, **{"wsgi.input": io.BytesIO(body)})
            for _chunk in app.wsgi_app(request_environ, lambda status, headers, exc=None: statuses.append(status)):
                pass

        for i in range(100):
            send(i)
        if not statuses[-1].startswith("200"):
            raise SystemExit(f"{spec.method} {url.path} answered {statuses[-1]}")
        list(map(send, range(count)))  # the only code callgrind counts (--toggle-collect=map_next)


def count(scenario: str, token_format: str, requests: int, outdir: Path, release=None) -> int:
    out = outdir / f"callgrind.{scenario}.out"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    cwd = harness.ROOT
    if release is not None:  # its code and libraries before this venv's (which still has bench's own)
        site_packages = next(release.venv.glob("lib/python*/site-packages"))
        env["PYTHONPATH"] = ":".join(str(path) for path in (release.source, site_packages, harness.ROOT) if path)
        cwd = outdir  # `-m` puts the working directory first: not the checkout's portal
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=map_next",
         f"--callgrind-out-file={out}", sys.executable, "-m", "bench.instructions", "--child", scenario,
         "--format", token_format, "--requests", str(requests)],
        cwd=cwd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{scenario}: {result.stderr[-2000:]}")
    totals = re.search(r"^(?:totals|summary): (\d+)", out.read_text(), re.MULTILINE)
    if not totals or int(totals.group(1)) == 0:
        raise RuntimeError(f"{scenario}: callgrind counted nothing (is this Python stripped of its symbols?)")
    return int(totals.group(1)) // requests


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default=",".join(HOT), help="comma-separated, from: " + ", ".join(HOT))
    parser.add_argument("--format", choices=["opaque", "jwt"], default="opaque")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--revision", help="count this earlier release (a tag or commit) instead of the tree")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        measured_loop(args.child, args.format, args.requests)
        return 0
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed: apt-get install -y valgrind")
    scenarios = ["ceiling"] + [s for s in args.scenarios.split(",") if s and s != "ceiling"]
    unknown = set(scenarios) - set(HOT)
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    release = None
    if args.revision:
        from bench import releases

        release = releases.install(args.revision)
    with tempfile.TemporaryDirectory(prefix="tessera-callgrind-") as outdir, \
            ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        counts = dict(zip(scenarios, pool.map(lambda s: count(s, args.format, args.requests, Path(outdir), release),
                                              scenarios)))
    print(f"instructions per request ({args.revision or 'working tree'}, {args.format}, {args.requests} requests "
          "each, callgrind)")
    for scenario, instructions in counts.items():
        print(f"  {scenario:<11} {instructions:>12,}   ratio {counts['ceiling'] / instructions:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
