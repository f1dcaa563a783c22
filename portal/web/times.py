"""Times that read themselves: "in 3 days", "2 hours ago", with the UTC stamp kept for
hover and screen readers (templates/_macros/times.html). Times are naive UTC (clock)."""

from datetime import datetime

from babel.dates import format_timedelta
from flask import Flask

from portal.domain import clock


def relative(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return ""
    delta = moment - (now or clock.now())
    if abs(delta.total_seconds()) < 45:
        return "just now"
    return format_timedelta(delta, add_direction=True, threshold=1.5, locale="en")


def utc_stamp(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def register(app: Flask) -> None:
    app.add_template_filter(relative, "relative")
    app.add_template_filter(utc_stamp, "utc_stamp")
