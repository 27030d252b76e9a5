"""``qc/index.html``: one page to review a batch in a browser, largest haemorrhage first.

A table of every case with its thumbnail (linking to the full montage), volume, ABC/2, components,
input kind and the never-empty flag; failed cases follow with their one-line cause. Static HTML with
no scripts, so it opens from a file share or an air-gapped workstation.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from urllib.parse import quote

from .io import atomic_write_text

STYLE = ("body{font-family:sans-serif;background:#111;color:#eee}table{border-collapse:collapse}"
         "td,th{border:1px solid #444;padding:4px 8px;text-align:right}td.l,th.l{text-align:left}"
         "img{width:256px;display:block}.err{color:#f66}")


def _row(case) -> str:
    image = f"{case.case}.png"
    thumb = f'<a href="{quote(image)}"><img src="{quote(image)}" alt="{escape(case.case)}"></a>'
    cells = [f'<td class="l">{escape(case.case)}</td>', f"<td>{case.volume_ml:.2f}</td>",
             f"<td>{'' if case.abc2_ml is None else f'{case.abc2_ml:.2f}'}</td>",
             f"<td>{'' if case.components is None else case.components}</td>",
             f'<td class="l">{escape(case.input_kind or "")}</td>',
             f"<td>{'yes' if case.rescued else ''}</td>", f"<td>{thumb}</td>"]
    return "<tr>" + "".join(cells) + "</tr>"


def index_html(cases: list, title: str) -> str:
    """The page for ``cases`` (``predict.CaseResult``): segmented ones by volume, then the failed ones."""
    shown = sorted((c for c in cases if c.status in ("ok", "skipped") and c.volume_ml is not None),
                   key=lambda c: (-c.volume_ml, c.case))
    failed = [c for c in cases if c.status == "error"]
    head = ('<tr><th class="l">case</th><th>volume mL</th><th>ABC/2 mL</th><th>components</th>'
            '<th class="l">input</th><th>never-empty rule</th><th>montage</th></tr>')
    parts = [f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{escape(title)}</title>",
             f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>",
             f"<p>{len(shown)} case(s), largest haemorrhage first; {len(failed)} failed.</p>",
             f'<table id="cases">{head}', *(_row(c) for c in shown), "</table>"]
    if failed:
        parts += ['<h2>Failed</h2><ul id="failed">',
                  *(f'<li class="err">{escape(c.case)}: {escape(c.error)}</li>' for c in failed), "</ul>"]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_index(qc_dir: Path, cases: list, title: str = "ichseg QC") -> Path:
    return atomic_write_text(Path(qc_dir) / "index.html", index_html(cases, title))
