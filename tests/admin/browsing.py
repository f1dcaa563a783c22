"""Helpers for the portal's browser tests: log in, read the live server's database, and
measure a page's layout the way an admin would see it."""

import hashlib
import json
import sqlite3
from pathlib import Path

SIZES = {1280: 800, 390: 844}  # width → height: a laptop and a phone, the windows the layout checks use

# Problems of the page's layout, as sentences: the page wider than the window, a table
# cell that is not under its column's header, a header whose text is cut off, a date
# broken over two lines.
LAYOUT_PROBLEMS = """() => {
  const problems = [];
  const page = document.documentElement;
  if (page.scrollWidth > window.innerWidth) {
    problems.push(`the page is ${page.scrollWidth}px wide in a ${window.innerWidth}px window`);
  }
  document.querySelectorAll("table").forEach((table, index) => {
    if (!table.getClientRects().length) return;  // not shown
    if (getComputedStyle(table).display !== "table") return;  // cards on a narrow screen: no columns
    const name = table.id ? `#${table.id}` : `table ${index + 1}`;
    const head = table.tHead && table.tHead.rows[table.tHead.rows.length - 1];
    if (!head || !head.getClientRects().length) return;  // no header row shown: a list as cards
    const columns = [];
    for (const th of head.cells) {
      const box = th.getBoundingClientRect();
      for (let i = 0; i < th.colSpan; i++) columns.push(box);
      if (th.scrollWidth > th.clientWidth + 1) problems.push(`${name}: header "${th.textContent.trim()}" is cut off`);
    }
    for (const body of table.tBodies) {
      for (const row of body.rows) {
        let column = 0;
        for (const cell of row.cells) {
          const first = columns[column], last = columns[column + cell.colSpan - 1];
          if (!first || !last) { problems.push(`${name}: a row has more cells than the header`); break; }
          const box = cell.getBoundingClientRect();
          if (box.left < first.left - 1 || box.right > last.right + 1 || box.top < first.bottom - 1) {
            problems.push(`${name}: cell "${cell.textContent.trim().slice(0, 30)}" is not under header ` +
                          `"${(head.cells[Math.min(column, head.cells.length - 1)] || {}).textContent}"`);
          }
          column += cell.colSpan;
        }
      }
    }
  });
  document.querySelectorAll("time").forEach(time => {
    if (time.getClientRects().length > 1) problems.push(`the date "${time.textContent}" is broken over lines`);
  });
  return problems;
}"""


def layout_problems(page) -> list[str]:
    return page.evaluate(LAYOUT_PROBLEMS)


# axe-core's serious and critical violations on the page.
AXE_RUN = """async () => {
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return results.violations.filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + ": " + n.failureSummary)}));
}"""


def assert_fits_and_is_accessible(page, axe_script: Path, name: str) -> None:
    """At each of SIZES, the window resized to it (CSS lays the page out again, as when a
    window is resized): no sideways scrolling, the layout sound, and axe clean. Every size
    is checked before the test fails, so its message names all that is wrong. axe is
    injected once: the page's context needs bypass_csp (the portal's CSP would refuse it)."""
    problems = {}
    page.add_script_tag(path=str(axe_script))
    for width, height in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        found = []
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        if scroll_width > width:
            found.append(f"scrolls sideways: {scroll_width}px wide")
        found += layout_problems(page)
        found += [json.dumps(violation, indent=2) for violation in page.evaluate(AXE_RUN)]
        if found:
            problems[width] = found
    assert not problems, "\n".join(f"{name} at {width}px:\n" + "\n".join(found) for width, found in problems.items())


def log_in(page, live_server, username="admin", password=None):
    page.goto(live_server.url + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password or live_server.admin_password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    assert "/login" not in page.url, "the login failed"


def signed_in_state(browser, live_server, username="admin", password=None) -> dict:
    """The browser state (cookies) of a login through the form, for new contexts to start
    signed in (`browser.new_context(storage_state=...)`)."""
    context = browser.new_context()
    try:
        log_in(context.new_page(), live_server, username, password)
        return context.storage_state()
    finally:
        context.close()


def db_rows(live_server, sql, *params):
    path = Path(live_server.env["TESSERA_INSTANCE_PATH"]) / "tessera.db"
    with sqlite3.connect(path) as connection:
        return connection.execute(sql, params).fetchall()


def token_id(live_server, value) -> int | None:
    digest = hashlib.sha256(value.encode()).hexdigest()
    rows = db_rows(live_server, "SELECT id FROM access_tokens WHERE token_hash = ?", digest)
    return rows[0][0] if rows else None


def box(locator) -> dict:
    found = locator.bounding_box()
    assert found is not None, f"{locator} is not shown"
    return found
