"""The page chrome and small HTML builders the run report and the comparison page share.

Inline CSS and JS, no network; a Content-Security-Policy forbids anything but the page's own
inline code and data-URI images, and every value put into the page is escaped."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from metaagentx.eval.trace_html import esc

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2733;background:#fafbfc}
header{background:#1d3557;color:#fff;padding:14px 24px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;font-size:13px;opacity:.85}
nav{background:#e8eef5;padding:6px 24px;position:sticky;top:0;z-index:2}
nav a{margin-right:14px;color:#1d3557;text-decoration:none;font-size:14px;font-weight:600}
main{padding:8px 24px 40px;max-width:1200px}
section{background:#fff;border:1px solid #dde3ea;border-radius:6px;padding:10px 16px;margin:14px 0}
h2{font-size:18px;margin:6px 0 10px;color:#1d3557}h3{font-size:15px;margin:12px 0 6px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border:1px solid #d5dbe2;padding:3px 8px;text-align:left}th{background:#eef2f7}
tr:nth-child(even) td{background:#f8fafc}
pre{background:#f4f6f8;border:1px solid #e1e5ea;padding:6px 8px;white-space:pre-wrap;
word-break:break-word;font-size:12px;max-height:420px;overflow:auto;margin:4px 0}
img{max-width:100%;display:block;margin:6px 0}
.missing{color:#8a5a00;background:#fff6e0;border:1px solid #f0d9a0;padding:6px 10px;border-radius:4px}
.ok{color:#1b7a2f;font-weight:600}.bad{color:#b3261e;font-weight:600}.dim{color:#667}
details{margin:3px 0 3px 10px}summary{cursor:pointer;font-size:13px;padding:2px 0}
details.problem{border-left:3px solid #457b9d;padding-left:8px;margin:8px 0}
details.design{border-left:3px solid #e9c46a;padding-left:8px}
details.execution{border-left:3px solid #90be6d;padding-left:8px}
.turn{border:1px solid #e4e8ee;border-radius:4px;padding:4px 8px;margin:4px 0;background:#fcfdfe}
.tool{border-left:3px solid #9d4edd;padding-left:6px;margin:4px 0}
.controls{margin:6px 0}.controls input{padding:3px 6px;width:260px}
.controls button{margin-left:6px;padding:3px 10px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:8px}
.card{border:1px solid #dde3ea;border-radius:6px;padding:8px 10px;background:#f7f9fb}
.card b{display:block;font-size:20px;color:#1d3557}.card span{font-size:12px;color:#556}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:6px}
.plots img{margin:0;border:1px solid #eef1f4;width:100%;height:auto}
.adv{font-size:11px;padding:0 6px;border-radius:8px;background:#e8eef5;color:#1d3557}
.adv.pos{background:#dcf2e0;color:#1b5e20}.adv.neg{background:#fbe3e1;color:#8c1d18}
h4{font-size:14px;margin:10px 0 4px;color:#334}
.legend{float:right;font-size:13px}.legend .run{margin-left:14px;white-space:nowrap}
.legend i{display:inline-block;width:18px;height:4px;margin-right:5px;vertical-align:middle}
"""

JS = """
function setAll(open){document.querySelectorAll('#traces details').forEach(d=>{d.open=open;});}
function filterTraces(text){
  const needle=text.toLowerCase();
  document.querySelectorAll('#traces details.problem').forEach(d=>{
    d.style.display=(d.dataset.search||'').toLowerCase().includes(needle)?'':'none';});
}
"""

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"


def page(
    title: str, heading: str, subtitle: str, sections: Sequence[tuple[str, str, str]], nav: str = ""
) -> str:
    """A whole self-contained page: (id, title, body HTML) sections behind a sticky nav;
    `nav` is extra HTML for the nav bar (e.g. a legend)."""
    links = "".join(f'<a href="#{sid}">{esc(name)}</a>' for sid, name, _ in sections)
    bodies = "".join(
        f'<section id="{sid}"><h2>{esc(name)}</h2>{body}</section>' for sid, name, body in sections
    )
    generated = time.strftime("%Y-%m-%d %H:%M:%S")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{esc(title)}</title><style>{CSS}</style><script>{JS}</script></head><body>"
        f"<header><h1>{esc(heading)}</h1><p>{esc(subtitle)} · generated {esc(generated)}</p>"
        f"</header><nav>{links}{nav}</nav><main>{bodies}</main></body></html>"
    )


def write_atomic(path: Path, text: str) -> Path:
    """Write via a `.partial` sibling so a reader never sees half a page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
    return path


def missing(text: str) -> str:
    """A plainly marked note that some data is absent (never an empty frame)."""
    return f'<p class="missing">{esc(text)}</p>'


def table(rows: Sequence[Mapping[str, Any]], columns: Iterable[str]) -> str:
    columns = list(columns)
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(r.get(c, ''))}</td>" for c in columns) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def image(png: str | None, alt: str, absent: str) -> str:
    """A base64 PNG, or the `absent` note when there was nothing to draw."""
    if png is None:
        return missing(absent)
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{png}">'


__all__ = ["CSP", "CSS", "JS", "image", "missing", "page", "table", "write_atomic"]
