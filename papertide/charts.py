"""Small self-contained SVG charts: a phrase's frequency per period, inlined by the web app.

Hand-written SVG (no plotting library): bars, three gridlines, a few labels, a tooltip
per bar, text in ``currentColor`` so it follows the page's colours; no scripts, no fonts
beyond the generic family, every text escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

VALUES = ("rate", "count")


def _xml(text: str) -> str:
    """Text safe in an XML element or a double-quoted attribute (characters XML forbids dropped)."""
    text = "".join(c for c in text if (c >= " " or c in "\t\n") and not "\ud800" <= c <= "\udfff"
                   and c not in "\ufffe\uffff")  # fmt: skip
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _nice_ceiling(x: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is >= x (1 for x <= 0)."""
    p = 10 ** math.floor(math.log10(x)) if x > 0 else 1.0
    return next(m * p for m in (1, 2, 5, 10) if m * p >= x * (1 - 1e-12))


def _num(x: float) -> str:
    return f"{x / 1e6:g}M" if x >= 1e6 else f"{x / 1e3:g}k" if x >= 1e4 else f"{x:g}"


def svg_chart(points: Sequence[tuple[str, int, int]], *, title: str | None = None, width: int = 480,
              height: int = 160, value: str = "rate") -> str:  # fmt: skip
    """A self-contained SVG bar chart of a series (:func:`papertide.trends.series`): occurrences per million word tokens
    (``value="rate"``, comparable across periods of different volume) or raw counts
    (``"count"``). No scripts, no fonts beyond the generic family; each bar has a tooltip."""
    if value not in VALUES:
        raise ValueError(f"unknown value {value!r}: expected one of {', '.join(VALUES)}")
    left, top, pw, ph = 44, 22, max(width - 52, 10), max(height - 42, 10)
    vals = [(c / t * 1e6 if t else 0.0) if value == "rate" else float(c) for _, c, t in points]
    ymax = _nice_ceiling(max(vals, default=0.0))
    unit = "per 1M tokens" if value == "rate" else "occurrences"
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} '
            f'{height}" role="img" font-family="sans-serif" font-size="10" fill="currentColor">'),
           f"<title>{_xml(title or 'phrase frequency')}</title>",
           f'<text x="{left}" y="14" font-size="12">{_xml(f"{title} ({unit})" if title else unit)}</text>']
    for frac in (0.0, 0.5, 1.0):  # gridlines with their values
        y = top + ph * (1 - frac)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#999" stroke-opacity=".4"/>'
                   f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end">{_num(ymax * frac)}</text>')
    n, step = len(points), pw / max(len(points), 1)
    gap = min(step * 0.15, 2.0)
    for i, ((lab, c, t), v) in enumerate(zip(points, vals)):
        h = ph * v / ymax
        tip = _xml(f"{lab}: {c} in {t:,} tokens" + (f" ({v:.3g} {unit})" if value == "rate" else ""))
        out.append(f'<rect x="{left + i * step + gap / 2:.2f}" y="{top + ph - h:.2f}" '
                   f'width="{max(step - gap, .5):.2f}" height="{h:.2f}" fill="#3b7dd8"><title>{tip}</title></rect>')
    ticks = [(0, "start", left), (n // 2, "middle", left + (n // 2 + 0.5) * step), (n - 1, "end", left + pw)]
    for i, anchor, x in ticks if n > 2 else ticks[:1] + ticks[2:] if n == 2 else ticks[:n]:
        out.append(f'<text x="{x:.1f}" y="{height - 6}" text-anchor="{anchor}">{_xml(points[i][0])}</text>')
    if not n:
        out.append(f'<text x="{left + pw / 2:.1f}" y="{top + ph / 2:.1f}" text-anchor="middle">no data</text>')
    return "\n".join(out + ["</svg>"])
