"""How Tessera counts things in what it says: the portal's pages and messages, the API's
errors and the CLI."""


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """"1 token", "3 tokens", "1,200 tokens"; an irregular plural is given ("1 entry", "2 entries")."""
    return f"{count:,} {singular if count == 1 else (plural_form or singular + 's')}"
