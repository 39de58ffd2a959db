"""Charts of the agreement report as inline SVG, drawn on the server: no script, no CDN.

Every label is escaped; numbers are formatted here. The markup is returned marked safe
for templates.
"""

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe


def heatmap(labels: list[str], matrix: list[list[float | None]], *, cell: int = 34) -> SafeString:
    """An annotator x annotator matrix of values in [0, 1]; darker is higher, blank is none."""
    margin = 12 + 7 * max((len(label) for label in labels), default=0)  # about 7 px a character
    size = margin + cell * len(labels)
    width = size + margin  # column labels lean right, past the last column
    parts = [
        f'<svg class="chart heatmap" role="img" aria-label="Pairwise F1 between annotators" '
        f'viewBox="0 0 {width} {size}" width="{width}" height="{size}">'
    ]
    for i, label in enumerate(labels):
        y = margin + i * cell + cell / 2
        parts.append(f'<text x="{margin - 6}" y="{y + 4}" text-anchor="end">{escape(label)}</text>')
        x = margin + i * cell + cell / 2
        parts.append(
            f'<text x="{x}" y="{margin - 6}" text-anchor="start" transform="rotate(-45 {x} {margin - 6})">'
            f"{escape(label)}</text>"
        )
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            x, y = margin + j * cell, margin + i * cell
            if value is None:
                parts.append(f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" class="empty"/>')
                continue
            light = round(95 - 60 * max(0.0, min(1.0, value)))
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="hsl(210 60% {light}%)">'
                f"<title>{escape(labels[i])} / {escape(labels[j])}: F1 {value:.3f}</title></rect>"
            )
            colour = "#fff" if light < 60 else "#123"
            parts.append(
                f'<text x="{x + cell / 2}" y="{y + cell / 2 + 4}" text-anchor="middle" fill="{colour}">'
                f"{value:.2f}</text>"
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))


def histogram(edges: list[float], counts: list[int], *, width: int = 520, height: int = 180) -> SafeString:
    """Bars of `counts` between consecutive `edges`, with the axis labelled at the ends and middle."""
    bottom, left, right = height - 24, 36, 16
    top = max(counts) if counts and max(counts) else 1
    bar = (width - left - right) / max(len(counts), 1)
    parts = [
        f'<svg class="chart histogram" role="img" aria-label="IoU of each box with its consensus box" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        f'<line x1="{left}" y1="{bottom}" x2="{width - right}" y2="{bottom}" class="axis"/>',
        f'<text x="{left - 4}" y="12" text-anchor="end">{top}</text>',
    ]
    for index, count in enumerate(counts):
        h = (bottom - 8) * count / top
        x = left + index * bar
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{bottom - h:.1f}" width="{bar - 2:.1f}" height="{h:.1f}" class="bar">'
            f"<title>{edges[index]:.2f} to {edges[index + 1]:.2f}: {count}</title></rect>"
        )
    for position in (0, len(counts) // 2, len(counts)):
        x = left + position * bar
        parts.append(f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle">{edges[position]:.2f}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))
