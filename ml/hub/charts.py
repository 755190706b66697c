"""Charts drawn on the server as inline SVG: no JavaScript, readable by a screen reader.

Colours and strokes are SVG attributes, not CSS, so the hub's Content-Security-Policy (no
inline styles) leaves them alone. Every chart has a <title> and a <desc> that says in words
what it shows, and the page puts the same figures in a table beside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from html import escape

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 36
LINE = "#0f766e"  # teal
GRID = "#d4d4d8"
TEXT = "#27272a"


def nice_ceiling(value: float) -> int:
    """The smallest of 1, 2, 2.5, 5 x 10^n that is at least `value` (the top of an axis)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return max(int(math.ceil(step * power)), 1)
    return int(10 * power)


def size_chart(title: str, points: Sequence[tuple[date, int]]) -> str:
    """A line of members per day as an SVG element; an empty sequence gives a note instead."""
    chart_id = "chart-" + "".join(c if c.isalnum() else "-" for c in title.lower())
    if not points:
        return f'<p id="{chart_id}">No sizes recorded yet.</p>'
    points = sorted(points)
    top = nice_ceiling(max(members for _, members in points))
    first, last = points[0][0], points[-1][0]
    span = max((last - first).days, 1)
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(day: date) -> float:
        if first == last:
            return LEFT + plot_width / 2
        return LEFT + plot_width * (day - first).days / span

    def y(members: int) -> float:
        return TOP + plot_height * (1 - members / top)

    lowest = min(points, key=lambda point: point[1])
    highest = max(points, key=lambda point: point[1])
    description = (
        f"{len(points)} day{'s' if len(points) != 1 else ''} from {first} to {last}: "
        f"{points[0][1]:,} members on the first, {points[-1][1]:,} on the last "
        f"(lowest {lowest[1]:,} on {lowest[0]}, highest {highest[1]:,} on {highest[0]})."
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" class="chart" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
    ]
    for fraction in (0, 0.5, 1):
        level = TOP + plot_height * (1 - fraction)
        parts.append(
            f'<line x1="{LEFT}" y1="{level:.1f}" x2="{WIDTH - RIGHT}" y2="{level:.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
        )
        value = float(top * fraction)
        label = f"{value:,.0f}" if value.is_integer() else f"{value:,.1f}"
        parts.append(
            f'<text x="{LEFT - 8}" y="{level + 4:.1f}" text-anchor="end" font-size="12" '
            f'fill="{TEXT}">{label}</text>'
        )
    coordinates = " ".join(f"{x(day):.1f},{y(members):.1f}" for day, members in points)
    if len(points) > 1:
        parts.append(
            f'<polyline points="{coordinates}" fill="none" stroke="{LINE}" stroke-width="2.5"/>'
        )
    for day, members in points:
        parts.append(
            f'<circle cx="{x(day):.1f}" cy="{y(members):.1f}" r="4" fill="{LINE}">'
            f"<title>{day}: {members:,} members</title></circle>"
        )
    baseline = HEIGHT - BOTTOM + 20
    parts.append(
        f'<text x="{x(first):.1f}" y="{baseline}" text-anchor="{"middle" if first == last else "start"}" '
        f'font-size="12" fill="{TEXT}">{first}</text>'
    )
    if last != first:
        parts.append(
            f'<text x="{x(last):.1f}" y="{baseline}" text-anchor="end" font-size="12" '
            f'fill="{TEXT}">{last}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
