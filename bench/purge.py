"""Measure `portal purge-expired` on N expired rows (default 1,000,000).

    python -m bench.purge [--rows 1000000] [--database-url postgresql+psycopg://.../test_bench]

SQLite: a fresh file in a temporary folder. PostgreSQL: a fresh database named after the
one in the URL (`<name>_purge_xxxx`), dropped afterwards; the URL's own database is not
touched. The rows go in fast (executemany in one transaction on SQLite, COPY on
PostgreSQL): N expired tokens with one tenant permission each, N/100 used authorization
codes, and 1,000 live tokens that must survive. Then `portal purge-expired` runs as a
child process; we report its wall time, rows/s and peak RSS (from wait4), and check
what is left.
"""

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.harness import ROOT, TREE, cli, portal_env

LIVE_TOKENS = 1000
CHUNK = 50_000


@dataclass
class PurgeFigures:
    database: str
    rows: int
    codes: int
    fill_seconds: float
    purge_seconds: float
    peak_rss_mb: float
    tokens_left: int
    live_left: int
    codes_left: int
    summary: str
    batch_size: int

    @property
    def rows_per_second(self) -> float:
        return (self.rows + self.codes) / self.purge_seconds if self.purge_seconds else 0.0


def token_rows(start: int, count: int, application_id: int, expires_at: datetime, issued_at: datetime,
               prefix: str):
    """Hashes start with y (expired) or z (live): never a hex digit, so never a real hash."""
    for i in range(start, start + count):
        yield (f"{prefix}{i:060x}", "tsr_" + f"{i:04x}"[-4:], "admin", application_id, "", False, issued_at,
               issued_at, expires_at)


TOKEN_COLUMNS = "token_hash, hint, source, application_id, scope, master, issued_at, created_at, expires_at"


def fill(database_url: str, rows: int) -> tuple[int, float]:
    """Insert `rows` expired tokens (+ one permission each), rows/100 used codes and live tokens."""
    from portal.domain import clock  # naive UTC, as the app stores it

    now = clock.now().replace(microsecond=0)
    past, issued = now - timedelta(days=1), now - timedelta(days=2)
    # Used codes are kept 30 days (--revoked-days) to detect replay; ours are older.
    code_used, code_issued = now - timedelta(days=40), now - timedelta(days=40, minutes=1)
    future = now + timedelta(days=30)
    codes = rows // 100
    engine = create_engine(database_url)
    started = time.perf_counter()
    try:
        with engine.begin() as connection:
            application_id = connection.execute(text("SELECT id FROM applications ORDER BY id LIMIT 1")).scalar_one()
            user_id = connection.execute(text("SELECT id FROM users ORDER BY id LIMIT 1")).scalar_one()
            driver = connection.connection.dbapi_connection
            if database_url.startswith("postgresql"):
                with driver.cursor() as cursor:
                    with cursor.copy(f"COPY access_tokens ({TOKEN_COLUMNS}) FROM STDIN") as copy:
                        for row in token_rows(0, rows, application_id, past, issued, "y"):
                            copy.write_row(row)
                        for row in token_rows(0, LIVE_TOKENS, application_id, future, issued, "z"):
                            copy.write_row(row)
                    with cursor.copy("COPY authorization_codes (code_hash, application_id, user_id, redirect_uri, "
                                     "response_type, scope, issued_at, expires_at, used_at, grant_id) "
                                     "FROM STDIN") as copy:
                        for i in range(codes):
                            copy.write_row((f"c{i:063x}", application_id, user_id, "", "code", "", code_issued,
                                            code_used, code_used, f"g{i:063x}"))
            else:
                cursor = driver.cursor()
                placeholders = ", ".join("?" * 9)
                for start in range(0, rows, CHUNK):
                    cursor.executemany(f"INSERT INTO access_tokens ({TOKEN_COLUMNS}) VALUES ({placeholders})",
                                       token_rows(start, min(CHUNK, rows - start), application_id, past, issued,
                                                  "y"))
                cursor.executemany(f"INSERT INTO access_tokens ({TOKEN_COLUMNS}) VALUES ({placeholders})",
                                   token_rows(0, LIVE_TOKENS, application_id, future, issued, "z"))
                cursor.executemany(
                    "INSERT INTO authorization_codes (code_hash, application_id, user_id, redirect_uri, response_type, "
                    "scope, issued_at, expires_at, used_at, grant_id) VALUES (?, ?, ?, '', 'code', '', ?, ?, ?, ?)",
                    ((f"c{i:063x}", application_id, user_id, code_issued, code_used, code_used, f"g{i:063x}")
                     for i in range(codes)))
                cursor.close()
            # One tenant permission per token, as admin-made tokens have.
            connection.execute(text("INSERT INTO token_permissions (token_id, position, tenant, actions) "
                                    "SELECT id, 0, '*', 'READ_TENANT' FROM access_tokens"))
        if database_url.startswith("postgresql"):
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text("VACUUM ANALYZE access_tokens"))
                connection.execute(text("VACUUM ANALYZE token_permissions"))
                connection.execute(text("VACUUM ANALYZE authorization_codes"))
    finally:
        engine.dispose()
    return codes, time.perf_counter() - started


def run_purge(env: dict, batch_size: int | None) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) of the `portal purge-expired` process, and its summary line."""
    args = [TREE.program("portal"), "purge-expired"] + ([f"--batch-size={batch_size}"] if batch_size else [])
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(args, env=env, stdout=out, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if process.returncode != 0:
        raise RuntimeError(f"portal purge-expired failed:\n{stderr[-2000:]}{stdout}")
    return seconds, usage.ru_maxrss / 1024, stdout.strip().splitlines()[-1]


def fresh_postgres(url: str, purpose: str = "purge") -> tuple[str, object]:
    """A new database beside the one in `url`, and the function that drops it."""
    base = make_url(url)
    name = f"{base.database}_{purpose}_{secrets.token_hex(3)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return base.set(database=name).render_as_string(hide_password=False), drop


def measure(database_url: str | None, rows: int = 1_000_000, batch_size: int | None = None) -> PurgeFigures:
    with tempfile.TemporaryDirectory(prefix="tessera-purge-") as tmp:
        workdir = Path(tmp)
        drop = None
        if database_url and database_url.startswith("postgresql"):
            url, drop = fresh_postgres(database_url)
        else:
            url = f"sqlite:///{workdir / 'purge.db'}"
        try:
            env = portal_env(url, workdir / "instance")
            cli(env, "init")
            codes, fill_seconds = fill(url, rows)
            purge_seconds, peak_rss, summary = run_purge(env, batch_size)
            engine = create_engine(url)
            with engine.connect() as connection:
                tokens_left = connection.execute(text("SELECT count(*) FROM access_tokens")).scalar_one()
                live_left = connection.execute(text("SELECT count(*) FROM access_tokens "
                                                    "WHERE token_hash LIKE 'z%'")).scalar_one()
                codes_left = connection.execute(text("SELECT count(*) FROM authorization_codes")).scalar_one()
            engine.dispose()
        finally:
            if drop:
                drop()
    return PurgeFigures(database="PostgreSQL" if drop else "SQLite", rows=rows, codes=codes,
                        fill_seconds=fill_seconds, purge_seconds=purge_seconds, peak_rss_mb=peak_rss,
                        tokens_left=tokens_left, live_left=live_left, codes_left=codes_left, summary=summary,
                        batch_size=batch_size or 0)


def render(f: PurgeFigures) -> str:
    ok = f.live_left == LIVE_TOKENS and f.codes_left == 0 and f.tokens_left == LIVE_TOKENS + 3
    return (f"purge-expired on {f.database} ({os.cpu_count()} cores): {f.rows:,} expired tokens "
            f"(+{f.rows:,} permissions) and {f.codes:,} used codes, filled in {f.fill_seconds:.1f} s\n"
            f"  purged in {f.purge_seconds:.1f} s = {f.rows_per_second:,.0f} rows/s "
            f"(tokens + codes), peak RSS {f.peak_rss_mb:.0f} MB"
            f"{f', batch size {f.batch_size}' if f.batch_size else ''}\n"
            f"  left: {f.tokens_left} tokens ({f.live_left}/{LIVE_TOKENS} live kept), {f.codes_left} codes"
            f" -> {'correct' if ok else 'UNEXPECTED'}\n"
            f"  portal said: {f.summary}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.purge", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", help="PostgreSQL URL; a fresh database is made next to it")
    parser.add_argument("--batch-size", type=int, help="passed to portal purge-expired")
    args = parser.parse_args(argv)
    print(render(measure(args.database_url, args.rows, args.batch_size)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
