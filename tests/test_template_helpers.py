"""Template helpers shared by every page: relative times (portal/web/times.py) and the error summary."""

from datetime import datetime, timedelta

from flask import render_template_string

from portal.web.times import relative, utc_stamp

NOW = datetime(2026, 12, 6, 12, 0, 0)


def test_relative_reads_both_directions():
    assert relative(NOW + timedelta(days=3, hours=1), NOW) == "in 3 days"
    assert relative(NOW - timedelta(hours=2), NOW) == "2 hours ago"
    assert relative(NOW - timedelta(seconds=10), NOW) == "just now"
    assert relative(None, NOW) == ""


def test_the_macro_keeps_the_utc_stamp_for_hover_and_screen_readers(app):
    moment = datetime(2026, 12, 1, 8, 30)
    with app.test_request_context():
        html = render_template_string('{% from "_macros/times.html" import when %}{{ when(moment) }}|{{ when(none) }}',
                                      moment=moment)
    assert 'datetime="2026-12-01T08:30:00Z"' in html
    assert 'title="2026-12-01 08:30 UTC"' in html
    assert '<span class="visually-hidden"> (2026-12-01 08:30 UTC)</span>' in html
    assert html.endswith("|—")
    assert utc_stamp(moment) == "2026-12-01 08:30 UTC"


def test_the_error_summary_lists_every_error_linking_to_its_field(app):
    from flask_wtf import FlaskForm
    from wtforms import StringField
    from wtforms.validators import DataRequired, Length

    class Form(FlaskForm):
        class Meta:
            csrf = False

        name = StringField("Name", [DataRequired()])
        code = StringField("Code", [Length(min=5)])

    with app.test_request_context(method="POST", data={"name": "", "code": "ab"}):
        form = Form()
        assert not form.validate()
        html = render_template_string('{% from "_macros/forms.html" import error_summary %}{{ error_summary(form) }}',
                                      form=form)
    assert "2 problems to fix" in html
    assert '<a href="#name">Name: This field is required.</a>' in html
    assert '<a href="#code">Code: ' in html
