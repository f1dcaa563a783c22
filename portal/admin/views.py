"""Admin dashboard: live tokens, tokens expiring within a week, tokens per application."""

from flask import render_template

from portal.admin import bp
from portal.admin.queries import dashboard_figures

CHART_WIDTH = 480
BAR_HEIGHT = 22


def bar_chart(pairs: list[tuple[str, int]]) -> dict:
    """Geometry for a small server-rendered horizontal bar chart (SVG attributes only)."""
    top = max((count for _, count in pairs), default=0) or 1
    label_width = 160
    bars = []
    for index, (name, count) in enumerate(pairs):
        width = round((CHART_WIDTH - label_width - 60) * count / top)
        bars.append({"name": name, "count": count, "y": index * (BAR_HEIGHT + 6), "width": max(width, 1)})
    return {"bars": bars, "width": CHART_WIDTH, "height": max(len(bars), 1) * (BAR_HEIGHT + 6),
            "label_width": label_width, "bar_height": BAR_HEIGHT}


@bp.route("")  # our routes never end in "/": the WSGI layer strips a trailing slash
def index():
    """The dashboard."""
    figures = dashboard_figures()
    chart = bar_chart([(name, count) for _, name, count in figures["per_application"]])
    return render_template("admin/index.html", figures=figures, chart=chart)
