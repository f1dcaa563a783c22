"""Every relative link of README.md and docs/*.md leads somewhere: the file (or folder)
exists, and an #anchor names a heading of the page it points at, as GitHub makes anchors."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]+\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`+[^`]*`+")


def prose(text: str) -> list[str]:
    """The lines outside fenced code blocks, each inline code span replaced by a word (a
    link inside one is no link; one as a link's text still leaves that link)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(CODE_SPAN.sub("code", line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found, seen = set(), {}
    fenced = False
    for line in page.read_text().splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        heading = re.match(r"^#{1,6} (.+?)#*\s*$", line)
        if fenced or not heading:
            continue
        base = slug(heading.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[str]:
    return [target for line in prose(page.read_text()) for target in LINK.findall(line)]


def relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target)


def test_slug_is_githubs():
    assert slug("Logout: `/end_session` (RP-Initiated Logout 1.0)") == "logout-end_session-rp-initiated-logout-10"
    assert slug("Audiences: the `resource` parameter (RFC 8707)") == "audiences-the-resource-parameter-rfc-8707"
    assert slug("Moving tokens, users and applications over") == "moving-tokens-users-and-applications-over"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    for target in filter(relative, links(page)):
        path, _, anchor = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.exists() or ROOT not in (destination, *destination.parents):
            broken.append(f"{target}: no such file")
        elif anchor and (destination.suffix != ".md" or anchor not in anchors(destination)):
            broken.append(f"{target}: no heading with the anchor #{anchor}")
    assert broken == [], f"{page.relative_to(ROOT)}: {broken}"


def test_the_readme_links_every_docs_page_and_the_pages_link_each_other():
    readme = {target.partition("#")[0] for target in links(ROOT / "README.md")}
    assert {f"docs/{page.name}" for page in PAGES[1:]} <= readme
    across = [target for page in PAGES[1:] for target in links(page) if relative(target)]
    assert len(across) > 30, across  # the pages point at each other, so the check above has work to do
