"""Charts as server-side SVG: no chart library, no script, nothing for the CSP to allow.

Each chart is an ``<svg role="img">`` named by its ``<title>`` and ``<desc>`` (what a screen
reader announces), every mark carries its value in a ``<title>`` (the hover tip), and series
differ by marker shape and dash as well as colour, so nothing is told by colour alone. The
palette is Okabe-Ito (readable with every common colour-vision deficiency); the activity
calendar uses a single-hue blue ramp. Pages put the numbers in a table next to each chart.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from markupsafe import Markup, escape

# Okabe-Ito
BLUE = "#0072B2"
ORANGE = "#E69F00"
SKY = "#56B4E9"
GREEN = "#009E73"
VERMILLION = "#D55E00"
PURPLE = "#CC79A7"
GREY = "#6b7280"
INK = "#1f2933"
GRID = "#d9dde3"
#: Daily activity tiers, light to dark (zero is a neutral grey, not the lightest blue).
TIER_COLOURS = {"zero": "#e5e7eb", "low": "#9ecae1", "mid": "#4292c6", "high": "#08306b"}
TIERS = ("zero", "low", "mid", "high")

Format = Callable[[float], str]
_ids = itertools.count(1)


def pct(value: float) -> str:
    return f"{value:.0%}"


def compact_number(value: float) -> str:
    """12,300 → 12.3k; 1,250,000 → 1.25M (axis labels)."""
    size = abs(value)
    if size >= 1_000_000:
        return f"{value / 1_000_000:.3g}M"
    if size >= 1_000:
        return f"{value / 1_000:.3g}k"
    return f"{value:.0f}"


@dataclass(frozen=True)
class Series:
    """One line of a line chart: values aligned with the chart's x labels (None: no point)."""

    name: str
    values: Sequence[float | None]
    colour: str = BLUE
    marker: str = "circle"  # circle | triangle | square | diamond
    dashed: bool = False
    tips: Sequence[str] | None = None  # hover text per point (default: label and value)


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _open(width: int, height: int, title: str, desc: str) -> tuple[list[str], str]:
    uid = f"chart-{next(_ids)}"
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-labelledby="{uid}-t {uid}-d" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{uid}-t">{escape(title)}</title><desc id="{uid}-d">{escape(desc)}</desc>',
    ]
    return parts, uid


def _text(x: float, y: float, text: str, anchor: str = "middle", cls: str = "axis") -> str:
    return (f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}" class="{cls}">'
            f"{escape(text)}</text>")


def _marker(shape: str, x: float, y: float, colour: str, tip: str, size: float = 4.5) -> str:
    t = f"<title>{escape(tip)}</title>"
    paint = f'fill="{colour}" stroke="#fff" stroke-width="1"'
    if shape == "triangle":
        h = size * 1.2
        pts = f"{_n(x)},{_n(y - h)} {_n(x - h)},{_n(y + h * 0.8)} {_n(x + h)},{_n(y + h * 0.8)}"
        return f'<polygon points="{pts}" {paint}>{t}</polygon>'
    if shape == "square":
        return (f'<rect x="{_n(x - size)}" y="{_n(y - size)}" width="{_n(2 * size)}" '
                f'height="{_n(2 * size)}" {paint}>{t}</rect>')
    if shape == "diamond":
        s = size * 1.3
        pts = f"{_n(x)},{_n(y - s)} {_n(x + s)},{_n(y)} {_n(x)},{_n(y + s)} {_n(x - s)},{_n(y)}"
        return f'<polygon points="{pts}" {paint}>{t}</polygon>'
    return f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{_n(size)}" {paint}>{t}</circle>'


def _legend(items: Sequence[tuple[str, str, str, bool]], x: float, y: float) -> list[str]:
    """(name, colour, marker, dashed) in a row from (x, y)."""
    out = []
    for name, colour, marker, dashed in items:
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        out.append(f'<line x1="{_n(x)}" y1="{_n(y)}" x2="{_n(x + 22)}" y2="{_n(y)}" '
                   f'stroke="{colour}" stroke-width="2"{dash}/>')
        out.append(_marker(marker, x + 11, y, colour, name, 4))
        out.append(_text(x + 28, y + 4, name, "start", "legend"))
        x += 40 + 7 * len(name)
    return out


def _thin(count: int, room: float, per_label: float = 56) -> int:
    """Label every n-th x position so labels do not overlap."""
    return max(1, math.ceil(count * per_label / max(room, 1)))


def _tick_count(span: float) -> int:
    """3 to 6 gridlines whose step is a round number (0.3, not 0.375)."""
    for ticks in (4, 5, 3, 6):
        step = span / ticks
        mantissa = step / 10 ** math.floor(math.log10(step))
        if any(math.isclose(mantissa, m) for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8)):
            return ticks
    return 4


def _y_axis(parts: list[str], left: float, right: float, top: float, bottom: float,
            y_max: float, fmt: Format, y_min: float = 0.0) -> Callable[[float], float]:
    def y_of(value: float) -> float:
        return bottom - (value - y_min) / (y_max - y_min) * (bottom - top)

    ticks = _tick_count(y_max - y_min)

    for i in range(ticks + 1):
        value = y_min + (y_max - y_min) * i / ticks
        y = y_of(value)
        parts.append(f'<line x1="{_n(left)}" y1="{_n(y)}" x2="{_n(right)}" y2="{_n(y)}" '
                     f'stroke="{GRID}" stroke-width="1"/>')
        parts.append(_text(left - 6, y + 4, fmt(value), "end"))
    return y_of


def nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 2.5, 5 × 10^k)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def line_chart(labels: Sequence[str], series: Sequence[Series], *, title: str, desc: str,
               y_max: float = 1.0, y_format: Format = pct, width: int = 540,
               height: int = 260, y_min: float = 0.0,
               thresholds: Sequence[tuple[float, str]] = ()) -> Markup:
    """Lines over categorical x positions (months, score dates); ``thresholds`` are
    labelled horizontal reference lines (e.g. the risk-tier cut-offs)."""
    parts, _uid = _open(width, height, title, desc)
    margin = 16.0 + (max(len(label) for _, label in thresholds) * 6.2 + 6 if thresholds else 0)
    left, right, top, bottom = 48.0, width - margin, 34.0, height - 30.0
    y_of = _y_axis(parts, left, right, top, bottom, y_max, y_format, y_min=y_min)
    for value, label in thresholds:  # labelled in the right margin, clear of the data
        y = y_of(value)
        parts.append(f'<line x1="{_n(left)}" y1="{_n(y)}" x2="{_n(right)}" y2="{_n(y)}" '
                     f'stroke="{GREY}" stroke-width="1.2" stroke-dasharray="4 3"/>')
        parts.append(_text(right + 6, y + 4, label, "start", "muted"))
    n = len(labels)
    step = (right - left) / max(n, 1)

    def x_of(i: int) -> float:
        return left + step * (i + 0.5)

    every = _thin(n, right - left)
    for i, label in enumerate(labels):
        if i % every == 0:
            parts.append(_text(x_of(i), bottom + 18, label))
    for s in series:
        points = [(x_of(i), y_of(min(max(v, y_min), y_max)), v)
                  for i, v in enumerate(s.values) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{_n(x)},{_n(y)}" for x, y, _ in points)
            dash = ' stroke-dasharray="6 4"' if s.dashed else ""
            parts.append(f'<polyline points="{path}" fill="none" stroke="{s.colour}" '
                         f'stroke-width="2.5"{dash}/>')
        values = [(i, v) for i, v in enumerate(s.values) if v is not None]
        for (i, v), (x, y, _) in zip(values, points, strict=True):
            tip = s.tips[i] if s.tips else f"{s.name}, {labels[i]}: {y_format(v)}"
            parts.append(_marker(s.marker, x, y, s.colour, tip))
    parts += _legend([(s.name, s.colour, s.marker, s.dashed) for s in series], left, 14)
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(labels: Sequence[str], values: Sequence[float | None], *, title: str,
              desc: str, name: str, y_max: float | None = None, y_format: Format = pct,
              colour: str = BLUE, intervals: Sequence[tuple[float, float] | None] | None = None,
              outlines: Sequence[float | None] | None = None, outline_name: str = "",
              interval_name: str = "", width: int = 540, height: int = 260,
              value_labels: bool = True) -> Markup:
    """Vertical bars (missing values leave a gap marked "n/a"), with optional whiskers
    (an interval per bar) and hollow outline bars behind (a reference amount per bar)."""
    tops = [v for v in values if v is not None]
    tops += [hi for iv in intervals or () if iv is not None for hi in iv]
    tops += [v for v in outlines or () if v is not None]
    top_value = y_max if y_max is not None else nice_max(max(tops, default=1.0))
    parts, _uid = _open(width, height, title, desc)
    left, right, top, bottom = 52.0, width - 16.0, 34.0, height - 30.0
    y_of = _y_axis(parts, left, right, top, bottom, top_value, y_format)
    n = len(labels)
    step = (right - left) / max(n, 1)
    bar = min(46.0, step * 0.62)
    every = _thin(n, right - left)
    for i, label in enumerate(labels):
        centre = left + step * (i + 0.5)
        if i % every == 0:
            parts.append(_text(centre, bottom + 18, label))
        if outlines is not None and outlines[i] is not None:
            y = y_of(outlines[i])
            parts.append(
                f'<rect x="{_n(centre - bar / 2 - 3)}" y="{_n(y)}" width="{_n(bar + 6)}" '
                f'height="{_n(bottom - y)}" fill="none" stroke="{GREY}" stroke-width="1.5" '
                f'stroke-dasharray="4 3"><title>{escape(outline_name)}, {escape(label)}: '
                f"{escape(y_format(outlines[i]))}</title></rect>")
        value = values[i]
        if value is None:
            parts.append(_text(centre, bottom - 6, "n/a", "middle", "muted"))
            continue
        y = y_of(min(value, top_value))
        tip = f"{name}, {label}: {y_format(value)}"
        parts.append(f'<rect x="{_n(centre - bar / 2)}" y="{_n(y)}" width="{_n(bar)}" '
                     f'height="{_n(max(bottom - y, 0.5))}" fill="{colour}" rx="2">'
                     f"<title>{escape(tip)}</title></rect>")
        interval = intervals[i] if intervals is not None else None
        if interval is not None:
            lo, hi = y_of(interval[0]), y_of(interval[1])
            parts.append(
                f'<g stroke="{INK}" stroke-width="1.5"><title>{escape(interval_name)}, '
                f"{escape(label)}: {escape(y_format(interval[0]))} to "
                f"{escape(y_format(interval[1]))}</title>"
                f'<line x1="{_n(centre)}" y1="{_n(lo)}" x2="{_n(centre)}" y2="{_n(hi)}"/>'
                f'<line x1="{_n(centre - 6)}" y1="{_n(lo)}" x2="{_n(centre + 6)}" y2="{_n(lo)}"/>'
                f'<line x1="{_n(centre - 6)}" y1="{_n(hi)}" x2="{_n(centre + 6)}" y2="{_n(hi)}"/>'
                "</g>")
        elif value_labels and step >= 34:
            parts.append(_text(centre, y - 5, y_format(value), "middle", "value"))
    legend = [(name, colour, "square", False)]
    if outlines is not None:
        legend.append((outline_name, GREY, "square", True))
    parts += _legend(legend, left, 14)
    if intervals is not None:
        parts.append(_text(right, 18, f"whiskers: {interval_name}", "end", "legend"))
    parts.append("</svg>")
    return Markup("".join(parts))


def signed_bars(items: Sequence[tuple[str, float]], *, title: str, desc: str,
                width: int = 760, row: int = 30, unit: str = " pts") -> Markup:
    """Horizontal bars around zero: (words, signed value). Negative values (pulling the
    probability down) point left in vermillion, positive right in blue; the value is
    written at the end of each bar with its sign."""
    label_width = width * 0.44
    room = 62.0  # for the value written beyond the end of the longest bar, on either side
    left, right = label_width + 8 + room, width - room
    centre = (left + right) / 2
    height = 28 + row * max(len(items), 1)
    biggest = max((abs(v) for _, v in items), default=1.0) or 1.0
    scale = (right - centre) / biggest
    max_chars = int(label_width / 6.4)  # 12px text; the full words are in each bar's title
    parts, _uid = _open(width, height, title, desc)
    parts.append(_text(centre - 6, 14, "← lowers renewal", "end", "legend"))
    parts.append(_text(centre + 6, 14, "raises renewal →", "start", "legend"))
    for i, (words, value) in enumerate(items):
        y = 24 + i * row
        bar_width = abs(value) * scale
        x = centre - bar_width if value < 0 else centre
        colour = VERMILLION if value < 0 else BLUE
        sign = "−" if value < 0 else "+"
        amount = f"{sign}{abs(value):.1f}{unit}"
        label = words if len(words) <= max_chars else words[: max_chars - 1] + "…"
        parts.append(_text(label_width, y + row / 2 + 4, label, "end", "label"))
        parts.append(f'<rect x="{_n(x)}" y="{_n(y + 5)}" width="{_n(max(bar_width, 1))}" '
                     f'height="{_n(row - 10)}" fill="{colour}" rx="2">'
                     f"<title>{escape(words)}: {escape(amount)}</title></rect>")
        end = x - 4 if value < 0 else x + bar_width + 4
        parts.append(_text(end, y + row / 2 + 4, amount, "end" if value < 0 else "start",
                           "value"))
    parts.append(f'<line x1="{_n(centre)}" y1="20" x2="{_n(centre)}" y2="{_n(height - 4)}" '
                 f'stroke="{INK}" stroke-width="1"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


@dataclass(frozen=True)
class ReliabilitySeries:
    name: str
    points: Sequence[tuple[float, float, int]]  # mean predicted, observed rate, count
    colour: str
    marker: str
    dashed: bool = False


def reliability_diagram(series: Sequence[ReliabilitySeries], *, title: str, desc: str,
                        size: int = 340) -> Markup:
    """Observed renewal rate against mean predicted probability per bin; on the dashed
    diagonal, a probability means what it says."""
    width, height = size + 180, size + 20
    left, top = 52.0, 14.0
    right, bottom = left + size - 60, top + size - 60
    parts, _uid = _open(width, height, title, desc)
    y_of = _y_axis(parts, left, right, top, bottom, 1.0, pct)

    def x_of(value: float) -> float:
        return left + value * (right - left)

    for i in range(5):
        x = x_of(i / 4)
        parts.append(_text(x, bottom + 18, pct(i / 4)))
    parts.append(_text((left + right) / 2, bottom + 36, "predicted probability (bin mean)"))
    middle = _n((top + bottom) / 2)
    parts.append(f'<text x="14" y="{middle}" class="axis" text-anchor="middle" '
                 f'transform="rotate(-90 14 {middle})">observed renewal rate</text>')
    parts.append(f'<line x1="{_n(x_of(0))}" y1="{_n(y_of(0))}" x2="{_n(x_of(1))}" '
                 f'y2="{_n(y_of(1))}" stroke="{GREY}" stroke-width="1.5" stroke-dasharray="5 4"/>')
    for s in series:
        pts = [(x_of(p), y_of(o), p, o, n) for p, o, n in s.points]
        if len(pts) > 1:
            dash = ' stroke-dasharray="6 4"' if s.dashed else ""
            path = " ".join(f"{_n(x)},{_n(y)}" for x, y, *_ in pts)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{s.colour}" '
                         f'stroke-width="2"{dash}/>')
        for x, y, p, o, n in pts:
            tip = f"{s.name}: predicted {p:.0%}, observed {o:.0%} of {n}"
            parts.append(_marker(s.marker, x, y, s.colour, tip, 5))
    legend_x, legend_y = right + 24, top + 16
    items = [*((s.name, s.colour, s.marker, s.dashed) for s in series),
             ("perfect calibration", GREY, "none", True)]
    for name, colour, marker, dashed in items:
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        parts.append(f'<line x1="{_n(legend_x)}" y1="{_n(legend_y)}" x2="{_n(legend_x + 22)}" '
                     f'y2="{_n(legend_y)}" stroke="{colour}" stroke-width="2"{dash}/>')
        if marker != "none":
            parts.append(_marker(marker, legend_x + 11, legend_y, colour, name, 4))
        parts.append(_text(legend_x + 28, legend_y + 4, name, "start", "legend"))
        legend_y += 22
    parts.append("</svg>")
    return Markup("".join(parts))


def tier_calendar(days: Sequence[tuple[date, str, int]], *, title: str, desc: str) -> Markup:
    """A year of daily activity tiers as a heat map: one column per week (Monday on top),
    one cell per day, like a contribution calendar. ``days``: (date, tier, key actions)."""
    cell, gap = 11, 2
    pitch = cell + gap
    by_day = {d: (tier, actions) for d, tier, actions in days}
    first = min(by_day)
    last = max(by_day)
    start = first - timedelta(days=first.weekday())
    weeks = (last - start).days // 7 + 1
    left, top = 34, 22
    width = left + weeks * pitch + 8
    height = top + 7 * pitch + 34
    parts, _uid = _open(width, height, title, desc)
    for row, name in ((0, "Mon"), (2, "Wed"), (4, "Fri")):
        parts.append(_text(left - 6, top + row * pitch + cell - 1, name, "end"))
    last_label = -100.0
    day = start
    while day <= last:
        week = (day - start).days // 7
        x = left + week * pitch
        # A month's name above the first week that starts in it (never two names crowded).
        if day.weekday() == 0 and day.day <= 7 and x - last_label >= 3 * pitch and (
                week < weeks - 1):
            last_label = x
            parts.append(_text(x, top - 8, day.strftime("%b"), "start"))
        if day in by_day:
            tier, actions = by_day[day]
            y = top + day.weekday() * pitch
            tip = f"{day.isoformat()}: {tier} ({actions} key action{'s' if actions != 1 else ''})"
            parts.append(f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" rx="2" '
                         f'fill="{TIER_COLOURS.get(tier, "#fff")}" class="tier-{escape(tier)}">'
                         f"<title>{escape(tip)}</title></rect>")
        day += timedelta(days=1)
    legend_y = top + 7 * pitch + 14
    x = left
    for tier in TIERS:
        parts.append(f'<rect x="{x}" y="{legend_y}" width="{cell}" height="{cell}" rx="2" '
                     f'fill="{TIER_COLOURS[tier]}"/>')
        parts.append(_text(x + cell + 4, legend_y + cell - 1, tier, "start", "legend"))
        x += cell + 14 + 7 * len(tier)
    parts.append("</svg>")
    return Markup("".join(parts))
