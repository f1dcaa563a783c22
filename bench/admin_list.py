"""Time the admin token list with a million rows, through a logged-in real gunicorn.

    python -m bench.admin_list                                  # SQLite file in a temp folder
    python -m bench.admin_list --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
    python -m bench.admin_list --tokens 100000 --requests 30    # quicker

Runs `portal init` (schema + an admin), fills the table with bench/seed_tokens.py unless it
already holds enough rows, starts `gunicorn wsgi:app`, logs in through the real form, then
requests each page REQUESTS times one after another and prints median and p99 in ms.
"""

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def admin_password(env) -> str:
    """Make (or reset) a bench admin through the CLI; return its password."""
    password = "bench-admin-password"
    result = subprocess.run([str(BIN / "portal"), "create-admin", "benchadmin", "--password-stdin"], env=env,
                            input=password + "\n", capture_output=True, text=True)
    if result.returncode != 0 and "exists" not in (result.stderr + result.stdout):
        raise SystemExit(f"portal create-admin failed: {result.stderr}{result.stdout}")
    return password


def log_in(base: str, password: str) -> requests.Session:
    session = requests.Session()
    page = session.get(base + "/login", timeout=30).text
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = session.post(base + "/login", data={"username": "benchadmin", "password": password,
                                                   "csrf_token": csrf}, allow_redirects=False, timeout=30)
    if response.status_code != 303:
        raise SystemExit(f"login failed: HTTP {response.status_code}")
    return session


def time_page(session, url: str, count: int) -> tuple[list[float], str]:
    timings, body = [], ""
    for _ in range(count):
        began = time.perf_counter()
        response = session.get(url, timeout=60)
        timings.append((time.perf_counter() - began) * 1000)
        response.raise_for_status()
        body = response.text
    return timings, body


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.admin_list", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    parser.add_argument("--instance", help="instance folder (default: a temporary folder)")
    parser.add_argument("--tokens", type=int, default=1_000_000, help="rows the table should hold")
    parser.add_argument("--requests", type=int, default=50, help="requests per page (default 50)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    instance = Path(args.instance or tempfile.mkdtemp(prefix="tessera-bench-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY")}
    env["TESSERA_INSTANCE_PATH"] = str(instance)
    env["ACCESS_LOG"] = "/dev/null"
    env["LOGIN_RATE_LIMIT"] = env.get("LOGIN_RATE_LIMIT", "1000/minute")
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    database = args.database_url or f"sqlite:///{instance / 'tessera.db'}"
    print(f"database: {database.split('@')[-1]}\ninstance: {instance}")
    subprocess.run([str(BIN / "portal"), "init"], env=env, check=True, capture_output=True)

    os.environ.update({"TESSERA_INSTANCE_PATH": str(instance), "DATABASE_URL": database})
    from sqlalchemy import func, select

    from bench.seed_tokens import seed
    from portal import create_app
    from portal.extensions import db
    from portal.models import AccessToken, Application, User

    app = create_app()
    with app.app_context():
        have = db.session.scalar(select(func.count()).select_from(AccessToken))
    if have < args.tokens:
        print(f"seeding {args.tokens - have:,} token rows ...")
        began = time.monotonic()
        have = seed(app, args.tokens - have)
        print(f"seeded in {time.monotonic() - began:.0f} s")
    with app.app_context():
        application = db.session.scalar(select(Application).where(Application.name == "bench-app-7"))
        user = db.session.scalar(select(User).where(User.username == "bench-user-123"))
        some_hint = db.session.scalar(select(AccessToken.hint).order_by(AccessToken.id.desc()).limit(1))
        db.engine.dispose()
    print(f"{have:,} token rows")

    password = admin_password(env)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "-b", f"127.0.0.1:{port}",
                               "-w", str(args.workers), "wsgi:app"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(base + "/readyz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("gunicorn did not start")
            time.sleep(0.3)
        session = log_in(base, password)
        pages = [
            ("list, first page (newest first)", "/admin/tokens"),
            ("list, sorted by expiry", "/admin/tokens?sort=expires_asc"),
            ("search: hint prefix", f"/admin/tokens?q={some_hint[:6]}"),
            ("search: username", "/admin/tokens?q=bench-user-123"),
            ("search: application name", "/admin/tokens?q=bench-app-7"),
            ("filter: application", f"/admin/tokens?application={application.id}"),
            ("filter: user", f"/admin/tokens?user={user.username}"),
            ("filter: tenant (EXISTS)", "/admin/tokens?tenant=bench3"),
            ("filter: master + active", "/admin/tokens?master=yes&status=active"),
            ("filter: source + tenant", "/admin/tokens?source=api&tenant=bench5"),
        ]
        print(f"\n{'page':<36} {'median ms':>10} {'p99 ms':>8}  rows")
        for label, path in pages:
            time_page(session, base + path, 2)  # warm up both workers
            timings, body = time_page(session, base + path, args.requests)
            rows = body.count('name="ids"')
            print(f"{label:<36} {statistics.median(timings):>10.1f} {percentile(timings, 0.99):>8.1f}  {rows}")
            if label.startswith("list, first"):
                match = re.search(r'href="([^"]+)" rel="next"', body)
                if match:
                    next_path = match.group(1).replace("&amp;", "&")
                    timings, body = time_page(session, base + next_path, args.requests)
                    rows = body.count('name="ids"')
                    print(f"{'list, next page (keyset cursor)':<36} {statistics.median(timings):>10.1f} "
                          f"{percentile(timings, 0.99):>8.1f}  {rows}")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
