"""Keeping bearer tokens out of logs: URL redaction shared by the app and gunicorn."""

import re

from gunicorn.glogging import Logger

SECRET_PARAMETERS = ("access_token", "accessTokenId", "refresh_token", "code", "client_secret", "token")
SECRET_PATTERN = re.compile(r"(?i)((?:^|[?&;\s])(?:%s)=)[^&;\s]*" % "|".join(SECRET_PARAMETERS))


def redact(text: str) -> str:
    """Replace the value of every secret-carrying query parameter with [REDACTED]."""
    return SECRET_PATTERN.sub(r"\1[REDACTED]", text or "")


class RedactingLogger(Logger):
    """Gunicorn's logger, with token values removed from every access-log line."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "q", "U", "{raw_uri}e"):
            if key in atoms and isinstance(atoms[key], str):
                atoms[key] = redact(atoms[key])
        return atoms
