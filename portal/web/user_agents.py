"""A browser's User-Agent header in a few words ("Chrome 156 on Linux"), for the list of
login sessions. The parsing is ua-parser's (the uap-core rules, updated monthly)."""

from functools import lru_cache

from ua_parser import parse

MAX_USER_AGENT_LENGTH = 512  # as stored: enough for every real browser's header
MAX_SUMMARY_LENGTH = 100
UNKNOWN = "Other"  # what ua-parser calls a browser or system it does not know


def stored_user_agent(header: str) -> str:
    """The header as kept: printable characters only (a database may refuse NUL), and
    no longer than any real browser sends."""
    return "".join(character for character in header if character.isprintable())[:MAX_USER_AGENT_LENGTH]


@lru_cache(maxsize=256)
def browser_summary(user_agent: str) -> str:
    """"Firefox 133 on Windows", "Mobile Safari 17 on iOS", "curl 8"; "Unknown browser"
    when the header names nothing ua-parser knows, "No User-Agent" when it is missing.
    The system's version is left out: browsers freeze it (Windows 11 says 10)."""
    if not user_agent.strip():
        return "No User-Agent"
    result = parse(user_agent)
    agent, system = result.user_agent, result.os
    if agent is None or agent.family == UNKNOWN:
        words = "Unknown browser"
    else:
        words = f"{agent.family} {agent.major}" if agent.major else agent.family
    if system is not None and system.family != UNKNOWN:
        words += f" on {system.family}"
    return words[:MAX_SUMMARY_LENGTH]
