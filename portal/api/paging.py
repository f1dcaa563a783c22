"""Keyset paging by id: constant work per page however many rows there are."""

from sqlalchemy import Select

from portal.extensions import db


def keyset_page(statement: Select, id_column, limit: int, after: int) -> tuple[list, int | None]:
    """Rows with id > after, in id order, and the `after` of the next page (None: last page)."""
    rows = list(db.session.scalars(statement.where(id_column > after).order_by(id_column).limit(limit + 1))
                .unique())
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, rows[-1].id
    return rows, None
