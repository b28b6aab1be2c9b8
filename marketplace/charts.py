"""Charts drawn as inline SVG (no image request, no script; the browser draws the text in its own
fonts, so the server needs no CJK font for them).

`temperature_svg`: a lot's temperatures on its way (the public trace page): one line through the
readings (broken where readings are more than an hour apart), the range its storage class allows
as a green band, excursions as red bands, the scale and the first and last times as labels. Long
series are thinned to the lowest and highest reading of each of MAX_BUCKETS time slices, so an
excursion's peak is never thinned away.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from markupsafe import Markup, escape

from domain import clock

WIDTH, HEIGHT = 340, 170
LEFT, RIGHT, TOP, BOTTOM = 34, 8, 8, 22  # margins for the labels
MAX_BUCKETS = 150
GAP = timedelta(hours=1)  # readings further apart than this are not joined


def _thin(points: list[tuple[datetime, int]]) -> list[tuple[datetime, int]]:
    if len(points) <= 2 * MAX_BUCKETS:
        return points
    start, end = points[0][0], points[-1][0]
    span = (end - start) / MAX_BUCKETS or timedelta(seconds=1)
    buckets: dict[int, list[tuple[datetime, int]]] = {}
    for p in points:
        buckets.setdefault(int((p[0] - start) / span), []).append(p)
    out: list[tuple[datetime, int]] = []
    for key in sorted(buckets):
        group = buckets[key]
        low, high = min(group, key=lambda p: p[1]), max(group, key=lambda p: p[1])
        out.extend(sorted({low, high}))
    return out


def temperature_svg(temperatures: Any, *, title: str = "") -> Markup:
    """The chart of a services.logistics.trace.Temperatures; "" when it has no readings."""
    points = [(r.at, r.celsius_tenths) for r in temperatures.readings]
    if not points:
        return Markup("")
    points = _thin(points)
    start, end = points[0][0], points[-1][0]
    if end == start:
        end = start + timedelta(minutes=1)
    low, high = temperatures.low_tenths, temperatures.high_tenths
    values = [t for _, t in points] + [v for v in (low, high) if v is not None]
    y_min, y_max = min(values) - 10, max(values) + 10
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(at: datetime) -> float:
        return LEFT + (at - start) / (end - start) * plot_w

    def y(tenths: float) -> float:
        return TOP + (y_max - tenths) / (y_max - y_min) * plot_h

    parts = [
        f'<svg class="temperature-chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img"'
        f' xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#ccc"/>',
    ]
    if low is not None or high is not None:  # the allowed range
        band_top = y(high) if high is not None else TOP
        band_bottom = y(low) if low is not None else TOP + plot_h
        parts.append(
            f'<rect class="allowed" x="{LEFT}" y="{band_top:.1f}" width="{plot_w}"'
            f' height="{max(band_bottom - band_top, 0):.1f}" fill="#e3f3e3"/>'
        )
    for ex in temperatures.excursions:
        a, b = max(ex.started_at, start), min(ex.ended_at, end)
        if b < a:
            continue
        parts.append(
            f'<rect class="excursion" x="{x(a):.1f}" y="{TOP}" width="{max(x(b) - x(a), 2):.1f}"'
            f' height="{plot_h}" fill="#d32f2f" fill-opacity="0.25"/>'
        )
    runs: list[list[tuple[datetime, int]]] = [[points[0]]]
    for previous, point in pairwise(points):
        if point[0] - previous[0] > GAP:
            runs.append([])
        runs[-1].append(point)
    for run in runs:
        coords = " ".join(f"{x(at):.1f},{y(t):.1f}" for at, t in run)
        if len(run) == 1:
            parts.append(f'<circle cx="{x(run[0][0]):.1f}" cy="{y(run[0][1]):.1f}" r="1.5" fill="#1565c0"/>')
        else:
            parts.append(f'<polyline points="{coords}" fill="none" stroke="#1565c0" stroke-width="1.5"/>')
    label = 'font-size="10" fill="#555" font-family="sans-serif"'
    for tenths in (y_max - 10, y_min + 10):
        parts.append(
            f'<text x="{LEFT - 3}" y="{y(tenths) + 3:.1f}" text-anchor="end" {label}>{tenths / 10:g}℃</text>'
        )
    for at, anchor in ((start, "start"), (end, "end")):
        when = clock.local(at).strftime("%m-%d %H:%M")
        parts.append(f'<text x="{x(at):.1f}" y="{HEIGHT - 6}" text-anchor="{anchor}" {label}>{when}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (numbers and escaped text only)
