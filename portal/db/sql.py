"""Small SQL helpers shared by the portal and the API."""

MAX_ID = 2**31 - 1  # row ids are 32-bit integers on PostgreSQL


def in_id_range(value: int) -> bool:
    """Could `value` be a row id? A larger number would be a database error, not a miss."""
    return 0 < value <= MAX_ID



def escape_like(text: str) -> str:
    """`text` with LIKE's wildcards escaped; use the pattern with `escape="\\\\"`."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
