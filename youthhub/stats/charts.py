"""The statistics as pictures: pygal SVG documents, served as images (<img>), so no script or
style of theirs runs in the page. Hidden counts ("<5") are gaps, never zeros."""

import pygal
from django.utils.translation import gettext as _
from pygal.style import Style

from .selectors import Table

STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#1d1d1f",
    foreground_strong="#1d1d1f",
    foreground_subtle="#5a5a60",
    colors=("#1f5f8b", "#a4262c", "#3a7d44", "#b8860b"),
    font_family="system-ui, sans-serif",
)

CHARTS = ("by_day", "by_weekday", "by_hour", "wait", "duration", "capacity", "topic", "tag")


def _config(kind, title: str, **options):
    return kind(
        title=title,
        style=STYLE,
        js=[],  # no script, no external fetch
        disable_xml_declaration=False,
        width=800,
        height=360,
        show_legend=options.pop("show_legend", False),
        print_values=False,
        x_label_rotation=options.pop("x_label_rotation", 0),
        **options,
    )


def chart_svg(table: Table) -> bytes:
    labels = list(table.labels.values())
    values = [table.values[key] for key in table.labels]
    if table.name == "capacity":
        chart = _config(pygal.Line, table.title, show_legend=True, legend_at_bottom=True)
        chart.x_labels = labels
        chart.add(_("Conversations at once"), values)
        chart.add(_("Staff on"), [table.extra["staff_on"][k] for k in table.labels])
        chart.add(_("Chat places"), [table.extra["places"][k] for k in table.labels])
    elif table.name in ("topic", "tag"):
        chart = _config(pygal.HorizontalBar, table.title)
        chart.x_labels = labels
        chart.add(table.title, values)
    else:
        rotate = 45 if table.name == "by_day" else 0
        chart = _config(pygal.Bar, table.title, x_label_rotation=rotate)
        chart.x_labels = labels
        if table.name == "by_day" and len(labels) > 31:
            chart.x_labels_major_every = 7
            chart.show_minor_x_labels = False
        chart.add(table.title, values)
    return chart.render()
