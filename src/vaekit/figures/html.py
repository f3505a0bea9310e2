"""Self-contained HTML pages: figures embedded as data URLs (PNG, or GIF for animations), inline CSS, no
scripts, no network. Pages are read at desktop and phone widths: wide tables scroll inside their section."""
from __future__ import annotations

import base64
import html
import io
import math
from typing import Any, Iterable, Sequence

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d232a; margin: 0; background: #f6f7f9; }
header { background: #1f3b57; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; opacity: .85; }
main { max-width: 1240px; margin: 0 auto; padding: 12px 32px 40px; }
section { background: #fff; border: 1px solid #e1e4e8; border-radius: 8px; margin: 18px 0; padding: 14px 20px; }
h2 { font-size: 18px; margin: 4px 0 10px; }
p.note { color: #57606a; margin: 4px 0 10px; }
img { max-width: 100%; height: auto; display: block; margin: 6px 0; image-rendering: pixelated; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { text-align: left; padding: 4px 12px 4px 0; border-bottom: 1px solid #eaecef; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { font-weight: 600; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); gap: 12px; }
code { background: #f0f2f4; padding: 1px 4px; border-radius: 3px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 10px; margin: 4px 0 8px; }
.tile { border: 1px solid #e1e4e8; border-radius: 6px; padding: 8px 12px; background: #fbfcfd; }
.tile .label { font-size: 13px; color: #57606a; }
.tile .value { font-size: 24px; font-weight: 600; font-variant-numeric: tabular-nums; margin: 2px 0; }
.tile .value small { font-size: 13px; font-weight: 400; color: #57606a; }
.tile .meaning { font-size: 13px; color: #3d444d; margin: 0; }
.scroll { overflow-x: auto; max-width: 100%; }
table.runs td, table.runs th[scope=col] { text-align: right; padding: 4px 0 4px 18px; }
td.best { font-weight: 700; background: #e3f2e6; }
td.best::after { content: " ★"; color: #1a7f37; }
th[scope=row], table.runs th:first-child { font-weight: 600; white-space: nowrap; background: #fff; position: sticky; left: 0; }
details { margin: 6px 0; }
summary { cursor: pointer; color: #1f3b57; font-weight: 600; }
p.warning { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: 8px 12px; margin: 6px 0 10px; }
@media (max-width: 640px) {
  header { padding: 12px 14px; }
  main { padding: 6px 8px 24px; }
  section { padding: 10px 10px; margin: 10px 0; }
  .tile .value { font-size: 20px; }
  .grid { grid-template-columns: 1fr; }
  th, td { padding: 3px 8px 3px 0; }
  th[scope=row] { white-space: normal; min-width: 6em; max-width: 9em; font-size: 13px; }
  table.runs td, table.runs th[scope=col] { padding-left: 10px; font-size: 13px; }
}
"""


def figure_data_url(fig, dpi: int | None = None) -> str:
    """Render a matplotlib Figure to a base64 PNG data URL."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image(fig, alt: str) -> str:
    return f'<img src="{figure_data_url(fig)}" alt="{html.escape(alt)}">'


def embedded(data: bytes, mime: str, alt: str) -> str:
    """An image of ready-made bytes (an animated GIF, say) as a data URL."""
    return f'<img src="data:{mime};base64,{base64.b64encode(data).decode("ascii")}" alt="{html.escape(alt)}">'


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:,.{digits}f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v, digits) for v in value)
    return str(value)


def table(rows: Iterable[Sequence[Any]], header: Sequence[str] | None = None, digits: int = 3) -> str:
    out = ['<div class="scroll"><table>']
    if header:
        out.append("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool) and i > 0
            cls = ' class="num"' if numeric else ""
            cells.append(f"<td{cls}>{html.escape(fmt(value, digits))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table></div>")
    return "\n".join(out)


def compact(value: Any) -> str:
    """A number in about four significant digits: 228.52, 0.6311, 0.04588; other values as :func:`fmt`."""
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.4g}" if abs(value) < 1 else f"{value:,.2f}"
    return fmt(value)


def row_table(header: Sequence[str], rows: Sequence[tuple[str, Sequence[Any]]], *, marked=frozenset()) -> str:
    """Runs side by side: a table whose rows are named (``<th scope="row">``, kept in view when it
    scrolls sideways) and whose cells ``(row, column)`` in ``marked`` are flagged as the best of their
    row; it scrolls sideways inside its section rather than widen the page."""
    out = ['<div class="scroll"><table class="runs">',
           "<tr>" + "".join(f'<th scope="col">{html.escape(h)}</th>' for h in header) + "</tr>"]
    for r, (name, values) in enumerate(rows):
        cells = []
        for c, value in enumerate(values):
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            classes = " ".join(filter(None, ["num" if numeric else "", "best" if (r, c) in marked else ""]))
            attributes = (f' class="{classes}"' if classes else "") + (' title="best of this row"' if (r, c) in marked else "")
            cells.append(f"<td{attributes}>{html.escape(compact(value))}</td>")
        out.append(f'<tr><th scope="row">{html.escape(name)}</th>' + "".join(cells) + "</tr>")
    out.append("</table></div>")
    return "\n".join(out)


def tiles(items: Iterable[tuple[str, str, str, str]]) -> str:
    """Headline numbers: (label, value, unit, one-line meaning) each in a tile."""
    out = ['<div class="tiles">']
    for label, value, unit, meaning in items:
        unit_html = f" <small>{html.escape(unit)}</small>" if unit else ""
        out.append(f'<div class="tile"><div class="label">{html.escape(label)}</div>'
                   f'<div class="value">{html.escape(value)}{unit_html}</div>'
                   f'<p class="meaning">{html.escape(meaning)}</p></div>')
    out.append("</div>")
    return "\n".join(out)


def details(summary: str, body: str) -> str:
    """Folded away until clicked (no script: the browser's own ``<details>``)."""
    return f"<details><summary>{html.escape(summary)}</summary>\n{body}\n</details>"


def warning(text: str) -> str:
    return f'<p class="warning">{html.escape(text)}</p>'


def section(title: str, body: str, note: str | None = None) -> str:
    note_html = f'<p class="note">{html.escape(note)}</p>' if note else ""
    return f"<section><h2>{html.escape(title)}</h2>{note_html}\n{body}\n</section>"


def page(title: str, subtitle: str, sections: Sequence[str]) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>"
            f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>\n<main>\n"
            + "\n".join(sections) + "\n</main></body></html>\n")
