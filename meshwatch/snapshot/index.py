"""``index.html``: every dashboard's picture, and what each picture could not show."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from meshwatch.snapshot.collect import PanelData

#: The first line of every index a snapshot writes: how ``--out`` is recognised as ours.
MARKER = "<!-- meshwatch snapshot -->"


@dataclass(frozen=True)
class DashboardPicture:
    """One dashboard's picture file and the panel data it was drawn from."""

    uid: str
    title: str
    image: str
    panels: Sequence[PanelData]


def _notes(picture: DashboardPicture) -> str:
    items = []
    for panel in picture.panels:
        if panel.kind == "not-drawable":
            items.append(
                f"<li>{escape(panel.title)}: not drawable here, {escape(panel.not_drawable or '')}</li>"
            )
        elif panel.kind == "prometheus" and not panel.has_data:
            why = "; ".join(panel.errors) or (
                "reads series from " + ", ".join(panel.external)
                if panel.external
                else "no data in the range"
            )
            items.append(f"<li>{escape(panel.title)}: no data ({escape(why)})</li>")
    return f"<ul>{''.join(items)}</ul>" if items else "<p>Every panel drew data.</p>"


def render_index(pictures: Sequence[DashboardPicture], header: str) -> str:
    sections = "".join(
        f'<section id="{escape(p.uid)}"><h2>{escape(p.title)}</h2>'
        f'<img src="{escape(p.image)}" alt="{escape(p.title)}" width="1200">{_notes(p)}</section>'
        for p in pictures
    )
    toc = "".join(f'<li><a href="#{escape(p.uid)}">{escape(p.title)}</a></li>' for p in pictures)
    return (
        f'{MARKER}\n<!doctype html>\n<html><head><meta charset="utf-8">'
        "<title>meshwatch dashboards (snapshot)</title>"
        "<style>body{font-family:sans-serif;background:#f4f5f5;color:#464c54;margin:2em}"
        "img{max-width:100%;border:1px solid #dcdcdc}section{margin-bottom:3em}</style>"
        f"</head><body><h1>meshwatch dashboards</h1><p>{escape(header)}</p><ul>{toc}</ul>"
        f"{sections}</body></html>\n"
    )
