"""Charts as inline SVG, drawn on the server: no JavaScript library, nothing inline to trust.

Every chart is a ``SafeString`` of ``<svg>`` markup whose text (labels, titles) is escaped, and
whose colours are presentation attributes taken from CSS classes in ``static/css/topdown.css``
(``chart-*``), so a strict Content-Security-Policy (no inline styles) holds. Each chart carries a
``<title>`` and ``role="img"`` with an ``aria-label``; pages show the figures in a table beside
or under it for those who would rather read.

    line_chart([Series("train loss", [(1, 0.9), (2, 0.5)])], x_label="epoch", y_label="loss")
    histogram([0.91, 0.95, 0.97], markers=[Marker("pixel similarity", 0.82)], x_label="accuracy")
    heatmap([[50, 2], [3, 45]], row_labels=["3", "7"], column_labels=["3", "7"])

Sizes are in SVG units; the SVG scales to its container (``viewBox``, ``width="100%"``).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

WIDTH = 640
HEIGHT = 280
MARGIN_LEFT = 56
MARGIN_RIGHT = 16
MARGIN_TOP = 16
MARGIN_BOTTOM = 44
SERIES_CLASSES = 6  # chart-series-0 .. chart-series-5 in the stylesheet


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]


@dataclass(frozen=True)
class Marker:
    """A labelled reference value (a baseline's score, a pass threshold)."""

    label: str
    value: float


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2 or 5 times a power of ten apart)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high < low:
        low, high = high, low
    if high == low:
        return [low]
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def format_tick(value: float) -> str:
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 10_000 or magnitude < 0.001:
        return f"{value:.1e}"
    if float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.4g}"


class _Frame:
    """Maps data coordinates to the plot area and draws its axes."""

    def __init__(
        self,
        x_range: tuple[float, float],
        y_range: tuple[float, float],
        *,
        width: int = WIDTH,
        height: int = HEIGHT,
    ) -> None:
        self.width, self.height = width, height
        self.x0, self.x1 = _padded(*x_range, pad=0.0)
        self.y0, self.y1 = _padded(*y_range, pad=0.05)
        self.left, self.right = MARGIN_LEFT, width - MARGIN_RIGHT
        self.top, self.bottom = MARGIN_TOP, height - MARGIN_BOTTOM

    def x(self, value: float) -> float:
        return self.left + (value - self.x0) / (self.x1 - self.x0) * (self.right - self.left)

    def y(self, value: float) -> float:
        return self.bottom - (value - self.y0) / (self.y1 - self.y0) * (self.bottom - self.top)

    def axes(self, x_label: str, y_label: str, *, x_ticks: bool = True) -> list[str]:
        parts = [
            f'<line class="chart-axis" x1="{self.left}" y1="{self.bottom}" '
            f'x2="{self.right}" y2="{self.bottom}"/>',
            f'<line class="chart-axis" x1="{self.left}" y1="{self.top}" '
            f'x2="{self.left}" y2="{self.bottom}"/>',
        ]
        for tick in nice_ticks(self.y0, self.y1):
            y = self.y(tick)
            parts.append(
                f'<line class="chart-grid" x1="{self.left}" y1="{y:.1f}" '
                f'x2="{self.right}" y2="{y:.1f}"/>'
            )
            parts.append(
                f'<text class="chart-tick" x="{self.left - 6}" y="{y + 4:.1f}" '
                f'text-anchor="end">{format_tick(tick)}</text>'
            )
        if x_ticks:
            for tick in nice_ticks(self.x0, self.x1, count=6):
                x = self.x(tick)
                parts.append(
                    f'<text class="chart-tick" x="{x:.1f}" y="{self.bottom + 16}" '
                    f'text-anchor="middle">{format_tick(tick)}</text>'
                )
        parts.append(
            f'<text class="chart-label" x="{(self.left + self.right) / 2:.1f}" '
            f'y="{self.height - 8}" text-anchor="middle">{escape(x_label)}</text>'
        )
        parts.append(
            f'<text class="chart-label" x="14" y="{(self.top + self.bottom) / 2:.1f}" '
            f'text-anchor="middle" transform="rotate(-90 14 {(self.top + self.bottom) / 2:.1f})">'
            f"{escape(y_label)}</text>"
        )
        return parts

    def horizontal_marker(self, marker: Marker) -> list[str]:
        y = self.y(marker.value)
        return [
            f'<line class="chart-marker" x1="{self.left}" y1="{y:.1f}" '
            f'x2="{self.right}" y2="{y:.1f}"/>',
            f'<text class="chart-marker-label" x="{self.right - 4}" y="{y - 4:.1f}" '
            f'text-anchor="end">{escape(marker.label)}</text>',
        ]

    def vertical_marker(self, marker: Marker, index: int) -> list[str]:
        x = self.x(marker.value)
        label_y = self.top + 12 + 14 * (index % 3)  # stagger labels of nearby markers
        right = x > self.left + (self.right - self.left) * 0.6
        return [
            f'<line class="chart-marker" x1="{x:.1f}" y1="{self.top}" '
            f'x2="{x:.1f}" y2="{self.bottom}"/>',
            # Labels near the right edge go on the line's left, or they would be cut off.
            f'<text class="chart-marker-label" x="{x + (-4 if right else 4):.1f}" y="{label_y}" '
            f'text-anchor="{"end" if right else "start"}">{escape(marker.label)}</text>',
        ]


def _padded(low: float, high: float, *, pad: float) -> tuple[float, float]:
    if high < low:
        low, high = high, low
    if high == low:
        spread = abs(low) * 0.1 or 1.0
        return low - spread, high + spread
    margin = (high - low) * pad
    return low - margin, high + margin


def _svg(parts: list[str], *, title: str, width: int = WIDTH, height: int = HEIGHT) -> SafeString:
    head = format_html(
        '<svg class="chart" viewBox="0 0 {} {}" width="100%" role="img" aria-label="{}" '
        'xmlns="http://www.w3.org/2000/svg"><title>{}</title>',
        width,
        height,
        title,
        title,
    )
    return mark_safe(head + "".join(parts) + "</svg>")  # noqa: S308 - every text part is escaped


def _finite(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    return [
        (float(x), float(y))
        for x, y in points
        if isinstance(x, int | float)
        and isinstance(y, int | float)
        and math.isfinite(x)
        and math.isfinite(y)
    ]


def line_chart(
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
    title: str = "",
    markers: Sequence[Marker] = (),
) -> SafeString:
    """Lines with dots; horizontal markers for reference values. Empty input: an empty string."""
    cleaned = [(s.name, _finite(s.points)) for s in series]
    cleaned = [(name, points) for name, points in cleaned if points]
    if not cleaned:
        return SafeString("")
    xs = [x for _, points in cleaned for x, _ in points]
    ys = [y for _, points in cleaned for _, y in points] + [m.value for m in markers]
    frame = _Frame((min(xs), max(xs)), (min(ys), max(ys)))
    parts = frame.axes(x_label, y_label)
    for marker in markers:
        parts += frame.horizontal_marker(marker)
    for index, (name, points) in enumerate(cleaned):
        css = f"chart-series-{index % SERIES_CLASSES}"
        path = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y in points)
        parts.append(f'<polyline class="chart-line {css}" points="{path}"/>')
        if len(points) <= 60:
            for x, y in points:
                parts.append(
                    f'<circle class="chart-dot {css}" cx="{frame.x(x):.1f}" cy="{frame.y(y):.1f}" '
                    f'r="3"><title>{escape(name)}: {format_tick(y)} at {format_tick(x)}</title>'
                    "</circle>"
                )
    if len(cleaned) > 1:
        for index, (name, _) in enumerate(cleaned):
            css = f"chart-series-{index % SERIES_CLASSES}"
            y = MARGIN_TOP + 4 + index * 16
            parts.append(
                f'<rect class="chart-swatch {css}" x="{frame.left + 8}" y="{y}" '
                f'width="10" height="10"/><text class="chart-legend" x="{frame.left + 22}" '
                f'y="{y + 9}">{escape(name)}</text>'
            )
    return _svg(parts, title=title or f"{y_label} by {x_label}")


def histogram(
    values: Sequence[float] | np.ndarray | array,
    *,
    x_label: str,
    bins: int = 20,
    markers: Sequence[Marker] = (),
    highlight: float | None = None,
    title: str = "",
) -> SafeString:
    """Counts of values in equal bins, with vertical markers; ``highlight`` marks "you".

    ``values`` may be a NumPy array or an ``array.array`` of numbers: a leaderboard passes
    thousands, and those are binned without a Python loop.
    """
    finite = _finite_values(values)
    if not finite.size:
        return SafeString("")
    low = min([float(finite.min()), *(m.value for m in markers)])
    high = max([float(finite.max()), *(m.value for m in markers)])
    if high == low:
        low, high = _padded(low, high, pad=0.0)
    width = (high - low) / bins
    # Every value is at least ``low``: truncating is int()'s rounding toward zero.
    slots = ((finite - low) / width).astype(np.int64)
    counts: list[int] = np.bincount(np.minimum(slots, bins - 1), minlength=bins).tolist()
    frame = _Frame((low, high), (0, max(counts)))
    frame.y0 = 0  # bars stand on zero
    parts = frame.axes(x_label, "count")
    for index, count in enumerate(counts):
        if not count:
            continue
        x0, x1 = frame.x(low + index * width), frame.x(low + (index + 1) * width)
        y = frame.y(count)
        lo, hi = low + index * width, low + (index + 1) * width
        parts.append(
            f'<rect class="chart-bar" x="{x0 + 1:.1f}" y="{y:.1f}" '
            f'width="{max(x1 - x0 - 2, 1):.1f}" height="{frame.bottom - y:.1f}">'
            f"<title>{count} between {format_tick(lo)} and {format_tick(hi)}</title></rect>"
        )
    for index, marker in enumerate(markers):
        parts += frame.vertical_marker(marker, index)
    if highlight is not None and math.isfinite(highlight):
        x = frame.x(highlight)
        parts.append(
            f'<line class="chart-highlight" x1="{x:.1f}" y1="{frame.top}" '
            f'x2="{x:.1f}" y2="{frame.bottom}"/>'
        )
    return _svg(parts, title=title or f"Distribution of {x_label}")


def _finite_values(values: Sequence[float] | np.ndarray | array) -> np.ndarray:
    """The finite numbers among ``values`` as floats (anything else is left out)."""
    if isinstance(values, np.ndarray | array):
        numbers = np.asarray(values, dtype=np.float64)
    else:
        numbers = np.array([v for v in values if isinstance(v, int | float)], dtype=np.float64)
    return numbers[np.isfinite(numbers)]


def heatmap(
    matrix: Sequence[Sequence[int | float]],
    *,
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    row_title: str = "true class",
    column_title: str = "predicted class",
    title: str = "Confusion matrix",
) -> SafeString:
    """Cells shaded by their share of the row (9 steps, ``chart-heat-0..8``), counts written in."""
    rows = len(matrix)
    if not rows or len(row_labels) != rows or any(len(r) != len(column_labels) for r in matrix):
        return SafeString("")
    columns = len(column_labels)
    cell = max(22, min(48, 480 // max(rows, columns)))
    left, top = 64, 44
    width, height = left + cell * columns + 8, top + cell * rows + 8
    parts = [
        f'<text class="chart-label" x="{left + cell * columns / 2:.1f}" y="14" '
        f'text-anchor="middle">{escape(column_title)}</text>',
        f'<text class="chart-label" x="12" y="{top + cell * rows / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {top + cell * rows / 2:.1f})">{escape(row_title)}</text>',
    ]
    columns_escaped = [escape(label) for label in column_labels]
    for j, label in enumerate(columns_escaped):
        parts.append(
            f'<text class="chart-tick" x="{left + cell * (j + 0.5):.1f}" y="{top - 8}" '
            f'text-anchor="middle">{label}</text>'
        )
    for i, (row_label, row) in enumerate(zip(row_labels, matrix, strict=True)):
        label = escape(row_label)
        total = sum(row) or 1
        parts.append(
            f'<text class="chart-tick" x="{left - 8}" y="{top + cell * (i + 0.5) + 4:.1f}" '
            f'text-anchor="end">{label}</text>'
        )
        for j, count in enumerate(row):
            share = count / total
            step = min(8, math.ceil(share * 8)) if count else 0
            kind = "diagonal" if i == j else "off"
            x, y = left + cell * j, top + cell * i
            text_class = "chart-cell-text-dark" if step >= 5 else "chart-cell-text"
            tick = format_tick(count)
            parts.append(
                f'<rect class="chart-heat-{step} chart-cell-{kind}" x="{x}" y="{y}" '
                f'width="{cell - 1}" height="{cell - 1}"><title>true {label}, predicted '
                f"{columns_escaped[j]}: {tick} ({share:.0%} of the row)"
                "</title></rect>"
            )
            if cell >= 28 or count:
                parts.append(
                    f'<text class="{text_class}" x="{x + cell / 2:.1f}" y="{y + cell / 2 + 4:.1f}" '
                    f'text-anchor="middle">{tick}</text>'
                )
    return _svg(parts, title=title, width=width, height=height)


def bar_chart(
    counts: Sequence[int | float],
    *,
    labels: Sequence[str],
    x_label: str,
    y_label: str = "count",
    title: str = "",
) -> SafeString:
    """One bar per label (a class's count of examples, say). Empty or mismatched: ``""``."""
    values = [float(count) for count in counts]
    if not values or len(labels) != len(values) or not all(map(math.isfinite, values)):
        return SafeString("")
    frame = _Frame((0, len(values)), (0, max(max(values), 1.0)))
    frame.y0 = 0  # bars stand on zero
    parts = frame.axes(x_label, y_label, x_ticks=False)
    slot = (frame.right - frame.left) / len(values)
    every = math.ceil(len(values) / 24)  # label at most about 24 bars, or the labels overlap
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        x, y = frame.left + index * slot, frame.y(value)
        parts.append(
            f'<rect class="chart-bar" x="{x + slot * 0.1:.1f}" y="{y:.1f}" '
            f'width="{max(slot * 0.8, 1):.1f}" height="{frame.bottom - y:.1f}">'
            f"<title>{escape(label)}: {format_tick(value)}</title></rect>"
        )
        if index % every == 0:
            parts.append(
                f'<text class="chart-tick" x="{x + slot / 2:.1f}" y="{frame.bottom + 16}" '
                f'text-anchor="middle">{escape(label[:10])}</text>'
            )
    return _svg(parts, title=title or f"{y_label} by {x_label}")
