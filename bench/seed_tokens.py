"""Fill a Tessera database with many token rows, fast (bulk inserts, not the token core).

    DATABASE_URL=sqlite:////tmp/t/tessera.db python -m bench.seed_tokens --tokens 1000000
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/db python -m bench.seed_tokens

The schema must exist (`portal init`). Adds tenants bench0..9, applications bench-app-0..19 and
users bench-user-0..999, then token rows with one or two tenant permissions each, spread over
the last year (a fifth expired, 1% master). Only for benchmarks: the application itself
writes token rows through portal.tokens only.
"""

import argparse
import hashlib
import os
import random
import sys
import time
from datetime import timedelta

from sqlalchemy import func, select, text

SOURCES = ("admin", "api", "authorization_code", "refresh_token", "client_credentials", "session")
SOURCE_WEIGHTS = (20, 20, 25, 10, 15, 10)
TENANTS = [f"bench{i}" for i in range(10)]
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
ACTION_SETS = ("READ_TENANT MANAGE_PROFILES MANAGE_TICKETS", "READ_TENANT", "*",
               "READ_TENANT UPDATE_TENANT", "MANAGE_PROFILES")
TOKEN_COLUMNS = ("id", "token_hash", "hint", "source", "application_id", "user_id", "scope", "master",
                 "issued_at", "created_at", "expires_at")
PERMISSION_COLUMNS = ("id", "token_id", "position", "tenant", "actions")


def reference_rows(db, models, users: int, applications: int):
    """Tenants, applications and users the tokens point at (made once, reused on a rerun)."""
    Tenant, Application, User = models.Tenant, models.Application, models.User
    for name in TENANTS:
        if not db.session.scalar(select(Tenant.id).where(Tenant.name == name)):
            db.session.add(Tenant(name=name, label=name.title()))
    for i in range(applications):
        name = f"bench-app-{i}"
        if not db.session.scalar(select(Application.id).where(Application.name == name)):
            db.session.add(Application(name=name, client_id=name, client_type="confidential"))
    existing = set(db.session.scalars(select(User.username).where(User.username.like("bench-user-%"))))
    db.session.add_all(User(username=f"bench-user-{i}", email=f"bench-user-{i}@example.org", password_hash=None)
                       for i in range(users) if f"bench-user-{i}" not in existing)
    db.session.commit()
    app_ids = list(db.session.scalars(select(Application.id).where(Application.name.like("bench-app-%"))))
    user_ids = list(db.session.scalars(select(User.id).where(User.username.like("bench-user-%"))))
    return app_ids, user_ids


def token_batches(start_id: int, start_perm_id: int, count: int, app_ids, user_ids, now, batch: int, seed: int):
    """Yield (token rows, permission rows) in batches of `batch` tokens."""
    rng = random.Random(seed)
    token_id, perm_id = start_id, start_perm_id
    tokens, perms = [], []
    for n in range(count):
        created = now - timedelta(seconds=rng.randrange(365 * 86400))
        expires = created + timedelta(seconds=rng.choice((3600, 86400, 30 * 86400, 400 * 86400)))
        hint = "tsr_" + "".join(rng.choice(ALPHABET) for _ in range(4))
        tokens.append((token_id, hashlib.sha256(f"bench-{seed}-{token_id}".encode()).hexdigest(), hint,
                       rng.choices(SOURCES, SOURCE_WEIGHTS)[0], rng.choice(app_ids),
                       rng.choice(user_ids) if rng.random() < 0.8 else None, "", rng.random() < 0.01,
                       created, created, expires))
        for position, tenant in enumerate(rng.sample(TENANTS + ["*"], 2 if rng.random() < 0.3 else 1)):
            perms.append((perm_id, token_id, position, tenant, rng.choice(ACTION_SETS)))
            perm_id += 1
        token_id += 1
        if len(tokens) >= batch or n == count - 1:
            yield tokens, perms
            tokens, perms = [], []


def copy_postgres(connection, tokens, perms):
    """PostgreSQL COPY: the fastest bulk path psycopg offers."""
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor:
        with cursor.copy(f"COPY access_tokens ({', '.join(TOKEN_COLUMNS)}) FROM STDIN") as copy:
            for row in tokens:
                copy.write_row(row)
        with cursor.copy(f"COPY token_permissions ({', '.join(PERMISSION_COLUMNS)}) FROM STDIN") as copy:
            for row in perms:
                copy.write_row(row)


def insert_sqlite(connection, tokens, perms):
    """sqlite3 executemany on plain tuples (the ORM and dict rows cost more than the inserts)."""
    cursor = connection.connection.driver_connection.cursor()
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.execute("PRAGMA cache_size=-262144")  # 256 MB: random-order index inserts thrash a small cache
    cursor.executemany(f"INSERT INTO access_tokens ({', '.join(TOKEN_COLUMNS)}) VALUES "
                       f"({', '.join('?' * len(TOKEN_COLUMNS))})",
                       [r[:8] + tuple(d.isoformat(sep=" ") for d in r[8:]) for r in tokens])
    cursor.executemany(f"INSERT INTO token_permissions ({', '.join(PERMISSION_COLUMNS)}) VALUES "
                       f"({', '.join('?' * len(PERMISSION_COLUMNS))})", perms)


def seed(app, count: int, users: int = 1000, applications: int = 20, batch: int = 50_000, seed: int = 1,
         out=sys.stdout) -> int:
    """Insert `count` token rows into the app's database; return how many exist now."""
    from portal.domain import clock
    from portal import models
    from portal.extensions import db

    with app.app_context():
        app_ids, user_ids = reference_rows(db, models, users, applications)
        engine = db.engine
        postgres = engine.dialect.name == "postgresql"
        with engine.begin() as connection:
            start_id = (connection.scalar(select(func.max(models.AccessToken.id))) or 0) + 1
            start_perm = (connection.scalar(select(func.max(models.TokenPermission.id))) or 0) + 1
        token_table = models.AccessToken.__table__
        began, done = time.monotonic(), 0
        for tokens, perms in token_batches(start_id, start_perm, count, app_ids, user_ids, clock.now(), batch,
                                           seed + start_id):
            with engine.begin() as connection:
                if postgres:
                    copy_postgres(connection, tokens, perms)
                else:
                    insert_sqlite(connection, tokens, perms)
            done += len(tokens)
            rate = done / max(time.monotonic() - began, 1e-6)
            print(f"\r  {done:>9,} / {count:,} tokens ({rate:,.0f}/s)", end="", file=out, flush=True)
        print(file=out)
        with engine.begin() as connection:
            if postgres:  # explicit ids: move the sequences past them
                for table in ("access_tokens", "token_permissions"):
                    connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                            f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"))
                connection.execute(text("ANALYZE access_tokens"))
                connection.execute(text("ANALYZE token_permissions"))
            else:
                connection.execute(text("ANALYZE"))
            return connection.scalar(select(func.count()).select_from(token_table))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.seed_tokens", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=1_000_000, help="rows to add (default 1,000,000)")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--applications", type=int, default=20)
    args = parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL"):
        print("set DATABASE_URL (and run `portal init` against it first)", file=sys.stderr)
        return 2
    from portal import create_app

    total = seed(create_app(), args.tokens, users=args.users, applications=args.applications)
    print(f"{total:,} token rows in the table")
    return 0


if __name__ == "__main__":
    sys.exit(main())
