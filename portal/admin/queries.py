"""Read-only queries for the admin lists: keyset pagination on the indexed orders."""

import sys
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import abort
from sqlalchemy import and_, case, exists, func, or_, select, text, tuple_, union

from portal.domain import clock
from portal.domain.tenants import tokens_granting_on, users_of
from portal.extensions import db
from portal.models import AccessToken, Application, AuditEvent, LoginSession, TokenPermission, User
from portal.models.token import ACTIVE, STATES
from portal.db.sql import MAX_ID, escape_like, in_id_range
from portal.tokens import find_by_value
from portal.tokens.values import MAX_VALUE_LENGTH

PAGE_SIZE = 50
# The epoch stands in for "never used", so a never-used token sorts last and its cursor compares.
NEVER = datetime(1970, 1, 1)


def application_name():
    return select(func.lower(Application.name)).where(Application.id == AccessToken.application_id) \
        .scalar_subquery()


def username():
    return func.coalesce(select(func.lower(User.username)).where(User.id == AccessToken.user_id)
                         .scalar_subquery(), "")


def status_rank():
    """The token's status as a number, in STATES' order (active, expired, revoked, inactive)."""
    now = clock.now()
    inactive_user = exists().where(User.id == AccessToken.user_id, User.active.is_(False))
    return case((AccessToken.revoked_at.is_not(None), 2), (AccessToken.expires_at <= now, 1),
                (inactive_user, 3), else_=0)


# sort key -> (the sort value's SQL, descending, its kind in a cursor: time, text or number)
TOKEN_SORTS = {
    "created_desc": (lambda: AccessToken.created_at, True, "time"),
    "created_asc": (lambda: AccessToken.created_at, False, "time"),
    "expires_asc": (lambda: AccessToken.expires_at, False, "time"),
    "expires_desc": (lambda: AccessToken.expires_at, True, "time"),
    "application": (application_name, False, "text"),
    "user": (username, False, "text"),
    "status": (status_rank, False, "number"),
    "used_desc": (lambda: func.coalesce(AccessToken.last_used_at, NEVER), True, "time"),
}
# The list counts matching tokens up to this many; past it, it says "more than".
COUNT_CAP = 200
# Source filter: login sessions are not shown unless asked for (an admin's own logins
# would crowd the list); "all" shows every source.
SESSION = "session"
ALL_SOURCES = "all"
EXPIRING_DAYS = (1, 7, 30)
SORT_LABELS = {
    "created_desc": "Newest first",
    "created_asc": "Oldest first",
    "expires_asc": "Expiring soonest",
    "expires_desc": "Expiring latest",
    "application": "Application (A–Z)",
    "user": "User (A–Z)",
    "status": "Status",
    "used_desc": "Last used",
}


def parse_id(text: str) -> int | None:
    """The id that `text` spells (ASCII digits, within the id range), else None."""
    text = (text or "").strip()
    if not (text.isascii() and text.isdigit()) or not in_id_range(int(text)):
        return None
    return int(text)


def row_or_404(model, row_id: int, description: str):
    """The row with this id, or a 404 page, also for an id past the id range (which
    PostgreSQL would refuse with an error rather than miss)."""
    row = db.session.get(model, row_id) if in_id_range(row_id) else None
    if row is None:
        abort(404, description)
    return row


def id_arg(args, name: str) -> int | None:
    """An id from the query string: None when absent or blank; 400 when it is not an id."""
    text = (args.get(name) or "").strip()
    if not text:
        return None
    value = parse_id(text)
    if value is None:
        abort(400, f"{name} must be an id (a whole number from 1 to {MAX_ID}).")
    return value


def text_arg(args, name: str, max_length: int) -> str:
    """A filter's text from the query string, trimmed; 400 (the portal's error page, saying
    why) when it is longer than `max_length`, rather than searching for a silently cut
    text, or when it holds characters no stored name or hint has (control characters, NUL,
    unassigned code points, lone surrogates: a database may refuse them outright)."""
    text = (args.get(name) or "").strip()
    what = "search text" if name == "q" else f"{name} filter"
    if len(text) > max_length:
        abort(400, f"The {what} is too long: at most {max_length:,} characters (it has {len(text):,}).")
    if not text.isprintable():
        abort(400, f"The {what} may contain printable characters only.")
    return text


def like_prefix(text: str) -> str:
    """A LIKE pattern matching `text` as a prefix, with wildcards escaped."""
    return escape_like(text) + "%"


def split_page(rows: list, page_size: int) -> tuple[list, object | None]:
    """The rows of a keyset query that asked for page_size + 1: this page's, and its last
    row when another page follows (None on the last page)."""
    if len(rows) > page_size:
        return rows[:page_size], rows[page_size - 1]
    return rows, None


def encode_cursor(moment, row_id: int) -> str:
    """A keyset position: the sort value (a time, a text or a number) and the row id."""
    return f"{moment.isoformat() if isinstance(moment, datetime) else moment}~{row_id}"


def decode_cursor(cursor: str | None, kind: str = "time"):
    if not cursor:
        return None
    value, _, row_id = cursor.rpartition("~")
    row_id = parse_id(row_id)
    if row_id is None:
        return None
    try:
        return {"time": datetime.fromisoformat, "text": str, "number": int}[kind](value), row_id
    except ValueError:
        return None


def matching_user_ids(text: str, limit: int = 50) -> list[int]:
    pattern = like_prefix(text.lower())
    return list(db.session.scalars(
        select(User.id).where(or_(func.lower(User.username).like(pattern, escape="\\"),
                                  func.lower(User.email).like(pattern, escape="\\"))).limit(limit)))


def matching_application_ids(text: str, limit: int = 50) -> list[int]:
    pattern = like_prefix(text.lower())
    return list(db.session.scalars(
        select(Application.id).where(func.lower(Application.name).like(pattern, escape="\\")).limit(limit)))


@dataclass
class TokenFilters:
    q: str = ""
    application: int | None = None
    user: str = ""
    status: str = ""
    master: str = ""
    tenant: str = ""
    source: str = ""
    expiring: int | None = None
    sort: str = "created_desc"

    @classmethod
    def from_args(cls, args):
        """The filters of a query string; 400 for an application that is not an id or a
        text no token could match."""
        sort = args.get("sort", "created_desc")
        return cls(
            q=text_arg(args, "q", MAX_VALUE_LENGTH),  # a whole token value may be pasted
            application=id_arg(args, "application"),
            user=text_arg(args, "user", 254),
            status=args.get("status", "") if args.get("status") in STATES else "",
            master=args.get("master", "") if args.get("master") in ("yes", "no") else "",
            tenant=text_arg(args, "tenant", 64),
            source=text_arg(args, "source", 32),
            expiring=int(args["expiring"]) if args.get("expiring") in {str(d) for d in EXPIRING_DAYS} else None,
            sort=sort if sort in TOKEN_SORTS else "created_desc",
        )

    def as_args(self) -> dict:
        values = {"q": self.q, "application": self.application, "user": self.user, "status": self.status,
                  "master": self.master, "tenant": self.tenant, "source": self.source, "expiring": self.expiring}
        if self.sort != "created_desc":
            values["sort"] = self.sort
        return {k: v for k, v in values.items() if v}


def token_conditions(filters: TokenFilters) -> list:
    now = clock.now()
    conditions = []
    if filters.application:
        conditions.append(AccessToken.application_id == filters.application)
    if filters.user:
        ids = matching_user_ids(filters.user)
        exact = db.session.scalar(select(User.id).where(or_(func.lower(User.username) == filters.user.lower(),
                                                               func.lower(User.email) == filters.user.lower())))
        conditions.append(AccessToken.user_id == exact if exact else AccessToken.user_id.in_(ids or [-1]))
    if filters.status:
        conditions += AccessToken.in_state(filters.status, now)
    if filters.master:
        conditions.append(AccessToken.master.is_(filters.master == "yes"))
    if filters.tenant:
        conditions.append(exists().where(TokenPermission.token_id == AccessToken.id,
                                         TokenPermission.tenant == filters.tenant))
    if filters.source == ALL_SOURCES:
        pass
    elif filters.source:
        conditions.append(AccessToken.source == filters.source)
    else:
        conditions.append(AccessToken.source != SESSION)
    if filters.expiring:
        conditions += [*AccessToken.in_state(ACTIVE, now),
                       AccessToken.expires_at <= now + timedelta(days=filters.expiring)]
    return conditions


def next_character(character: str) -> str | None:
    """The code point after `character`, skipping surrogates (no database stores a lone
    one); None after the last."""
    code = ord(character) + 1
    if 0xD800 <= code <= 0xDFFF:
        code = 0xE000
    return chr(code) if code <= sys.maxunicode else None


def hint_prefix(text: str):
    """Rows whose hint starts with `text`: a range the hint index serves, plus an exact LIKE."""
    prefix = text[:16]
    conditions = [AccessToken.hint >= prefix, AccessToken.hint.like(like_prefix(prefix), escape="\\")]
    following = next_character(prefix[-1])
    if following is not None:
        conditions.append(AccessToken.hint < prefix[:-1] + following)
    return and_(*conditions)


def search_alternatives(q: str) -> list:
    """What a search box text may name: a hint prefix, a whole value, an application, a user."""
    alternatives = [hint_prefix(q)]
    whole = find_by_value(q) if len(q) >= 16 else None  # a pasted full value: one hash lookup
    if whole is not None:
        alternatives.append(AccessToken.id == whole.id)
    app_ids = matching_application_ids(q)
    if app_ids:
        alternatives.append(AccessToken.application_id.in_(app_ids))
    user_ids = matching_user_ids(q)
    if user_ids:
        alternatives.append(AccessToken.user_id.in_(user_ids))
    return alternatives


def token_page(filters: TokenFilters, cursor: str | None, page_size: int = PAGE_SIZE):
    """One page of tokens and the cursor of the next page (None on the last).

    Keyset pagination on (sort value, id): the indexes serve the time orders; the others
    (application, user, status, last use) read the matching rows. A search is one query
    per alternative (hint, application, user), each on its own index and limited,
    combined by UNION: an OR over them would make the database walk the whole sort index.
    """
    make_column, descending, kind = TOKEN_SORTS[filters.sort]
    column = make_column()
    conditions = token_conditions(filters)
    position = decode_cursor(cursor, kind)
    key = tuple_(column, AccessToken.id)
    if position:
        conditions.append(key < position if descending else key > position)
    order = (column.desc(), AccessToken.id.desc()) if descending else (column.asc(), AccessToken.id.asc())
    statement = select(AccessToken, column)
    if filters.q:
        parts = [select(AccessToken.id).where(*conditions, alternative).order_by(*order).limit(page_size + 1)
                 .subquery() for alternative in search_alternatives(filters.q)]
        ids = union(*(select(part.c.id) for part in parts)).subquery()
        statement = statement.where(AccessToken.id.in_(select(ids.c.id)))
    else:
        statement = statement.where(*conditions)
    rows = db.session.execute(statement.order_by(*order).limit(page_size + 1)).unique().all()
    rows, last = split_page(rows, page_size)
    return [row[0] for row in rows], encode_cursor(last[1], last[0].id) if last else None


def audit_for(target_type: str, target_id, limit: int = 50) -> list[AuditEvent]:
    return list(db.session.scalars(
        select(AuditEvent).where(AuditEvent.target_type == target_type, AuditEvent.target_id == str(target_id))
        .order_by(AuditEvent.id.desc()).limit(limit)))


def matching_ids(filters: TokenFilters, limit: int | None = None):
    """The ids of the tokens the filters match (at most `limit` per search alternative):
    a search is one query per alternative (hint, application, user), each on its own index."""
    conditions = token_conditions(filters)
    if not filters.q:
        return select(AccessToken.id).where(*conditions).limit(limit)
    parts = [select(AccessToken.id).where(*conditions, alternative).limit(limit).subquery()
             for alternative in search_alternatives(filters.q)]
    return union(*(select(part.c.id) for part in parts))


def count_tokens(filters: TokenFilters, cap: int = COUNT_CAP) -> tuple[int, bool]:
    """How many tokens the filters match, counted up to `cap`: (count, more than cap).
    Bounded, so a page costs about the same at a million rows: a selective filter (1 token
    in 100) reads some 100 × cap rows to count, as the page itself reads 100 × 50."""
    found = db.session.scalar(select(func.count()).select_from(matching_ids(filters, cap + 1).subquery()))
    return min(found, cap), found > cap


def estimated_count(filters: TokenFilters) -> int | None:
    """PostgreSQL's planner estimate of how many tokens match (no rows read); None elsewhere."""
    if db.engine.dialect.name != "postgresql":
        return None
    statement = matching_ids(filters).compile(db.engine, compile_kwargs={"literal_binds": True})
    plan = db.session.scalar(text(f"EXPLAIN (FORMAT JSON) {statement}"))
    rows = int(plan[0]["Plan"]["Plan Rows"])
    return rows if rows > 0 else None


def dashboard_figures() -> dict:
    """Live tokens (login sessions counted apart: they are not tokens an admin hands out)."""
    now = clock.now()
    live = [*AccessToken.in_state(ACTIVE, now), AccessToken.source != SESSION]
    active = db.session.scalar(select(func.count()).select_from(AccessToken).where(*live))
    soon = db.session.scalar(select(func.count()).select_from(AccessToken).where(
        *live, AccessToken.expires_at <= now + timedelta(days=7)))
    sessions = db.session.scalar(select(func.count()).select_from(AccessToken).where(*live_sessions(now)))
    per_application = db.session.execute(
        select(Application.id, Application.name, func.count(AccessToken.id))
        .join(AccessToken, AccessToken.application_id == Application.id)
        .where(*live).group_by(Application.id, Application.name).order_by(func.count(AccessToken.id).desc())
        .limit(12)
    ).all()
    return {"active": active, "expiring": soon, "sessions": sessions,
            "per_application": [(i, n, c) for i, n, c in per_application]}


def live_sessions(now: datetime) -> list:
    """SQL conditions for the login sessions that still let a browser in."""
    return [AccessToken.source == SESSION, *AccessToken.in_state(ACTIVE, now)]


def session_counts(cap: int | None = None, exclude_token_id: int | None = None) -> tuple[int, int]:
    """(live login sessions, users they belong to), leaving out one session if asked; with
    `cap`, sessions are counted up to cap + 1 only (the list says "more than"), and users
    not at all (0)."""
    live = select(AccessToken.id, AccessToken.user_id).where(*live_sessions(clock.now()))
    if exclude_token_id is not None:
        live = live.where(AccessToken.id != exclude_token_id)
    if cap is not None:
        return db.session.scalar(select(func.count()).select_from(live.limit(cap + 1).subquery())), 0
    found = live.subquery()
    sessions, users = db.session.execute(
        select(func.count(), func.count(found.c.user_id.distinct())).select_from(found)).one()
    return sessions, users


@dataclass
class UserFilters:
    """The user list's filters: a username/email prefix, a tenant name, admin and active (yes/no)."""
    q: str = ""
    tenant: str = ""
    admin: str = ""
    active: str = ""

    @classmethod
    def from_args(cls, args):
        def yes_no(name: str) -> str:
            return args.get(name, "") if args.get(name) in ("yes", "no") else ""
        return cls(q=text_arg(args, "q", 254), tenant=text_arg(args, "tenant", 64),
                   admin=yes_no("admin"), active=yes_no("active"))

    def as_args(self) -> dict:
        return {k: v for k, v in vars(self).items() if v}

    def conditions(self) -> list:
        conditions = []
        if self.q:
            pattern = like_prefix(self.q.lower())
            conditions.append(or_(func.lower(User.username).like(pattern, escape="\\"),
                                  func.lower(User.email).like(pattern, escape="\\")))
        if self.tenant:
            conditions.append(User.tenant.has(name=self.tenant))
        if self.admin:
            conditions.append(User.is_admin.is_(self.admin == "yes"))
        if self.active:
            conditions.append(User.active.is_(self.active == "yes"))
        return conditions


def user_counts(user_ids: list[int]) -> dict[int, tuple[int, int]]:
    """For each user: (active tokens other than login sessions, live login sessions)."""
    if not user_ids:
        return {}
    now = clock.now()
    unexpired = [AccessToken.user_id.in_(user_ids), AccessToken.revoked_at.is_(None), AccessToken.expires_at > now]
    rows = db.session.execute(
        select(AccessToken.user_id,
               func.count().filter(AccessToken.source != SESSION),
               func.count().filter(AccessToken.source == SESSION))
        .where(*unexpired).group_by(AccessToken.user_id)).all()
    found = {user_id: (tokens, sessions) for user_id, tokens, sessions in rows}
    return {user_id: found.get(user_id, (0, 0)) for user_id in user_ids}


def sessions_by_user(user: str, after: str | None, page_size: int = 20, per_user: int = 20):
    """Live login sessions grouped by user: a page of users (by username, keyset on it) who
    have one, each with their newest `per_user` sessions and how many they have in all.
    `user` narrows to usernames or emails starting with it. Returns (groups, next cursor)."""
    now = clock.now()
    live = (select(AccessToken.user_id, func.count().label("total")).where(*live_sessions(now))
            .group_by(AccessToken.user_id).subquery())
    statement = select(User, live.c.total).join(live, live.c.user_id == User.id).order_by(User.username)
    if user:
        pattern = like_prefix(user.lower())
        statement = statement.where(or_(func.lower(User.username).like(pattern, escape="\\"),
                                        func.lower(User.email).like(pattern, escape="\\")))
    if after:
        statement = statement.where(User.username > after[:150])
    users = db.session.execute(statement.limit(page_size + 1)).all()
    users, last = split_page(users, page_size)
    groups = []
    for member, total in users:
        rows = db.session.execute(
            select(AccessToken, LoginSession).outerjoin(LoginSession, LoginSession.token_id == AccessToken.id)
            .where(AccessToken.user_id == member.id, *live_sessions(now))
            .order_by(AccessToken.created_at.desc(), AccessToken.id.desc()).limit(per_user)).all()
        groups.append({"user": member, "total": total, "sessions": [(t, d) for t, d in rows]})
    return groups, (last[0].username if last else None)


def tenant_contents(tenant, limit: int = 20) -> dict:
    """What belongs to a tenant: its first users (by username) and the first tokens that
    grant on it (newest first), with how many of each there are; a tenant with neither can
    be deleted."""
    granting = tokens_granting_on(tenant)
    return {
        "users": list(db.session.scalars(select(User).where(User.tenant_id == tenant.id)
                                         .order_by(User.username).limit(limit))),
        "user_count": users_of(tenant),
        "tokens": list(db.session.scalars(select(AccessToken).where(AccessToken.id.in_(granting))
                                          .order_by(AccessToken.id.desc()).limit(limit))),
        "token_count": db.session.scalar(select(func.count()).select_from(granting.subquery())),
    }
