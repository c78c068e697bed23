"""Charts drawn on the server as inline SVG: no script (the pages' content security policy
runs none inline, and a chart must show without JavaScript), nothing to load, and the
browser tests see the same markup people do. Pure: numbers in, markup out.

Two shapes cover the reports: horizontal bars (one row per label, one or more series side
by side or stacked, the value written at the end of each bar so nobody reads an axis) and a
weekday × hour heat map. Every chart carries a <title> and an aria-label for screen readers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

# Colours that stay apart for the common colour-vision deficiencies (Okabe–Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9")
LABEL_WIDTH = 150
BAR_AREA = 420
VALUE_WIDTH = 90
ROW_GAP = 6
BAR_HEIGHT = 14
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    colour: str


def _text(value: object) -> str:
    return str(escape(str(value)))


def legend(series: Sequence[Series], y: int) -> list[str]:
    parts: list[str] = []
    x = LABEL_WIDTH
    for item in series:
        parts.append(f'<rect x="{x}" y="{y}" width="12" height="12" fill="{item.colour}"/>')
        parts.append(f'<text x="{x + 16}" y="{y + 10}" {FONT}>{_text(item.name)}</text>')
        x += 24 + 8 * len(item.name) + (6 * sum(1 for c in item.name if ord(c) > 0x2E80))
    return parts


def bars(
    rows: Sequence[tuple[str, Sequence[float | None]]],
    series: Sequence[Series],
    *,
    title: str,
    stacked: bool = False,
    shown: Callable[[float], str] = lambda value: f"{value:g}",
    empty: str = "",
) -> Markup:
    """Horizontal bars: a row per label; each series a bar beside the others, or stacked
    into one bar. Values are written at the bar's end; None draws nothing."""
    if not rows:
        return Markup(
            f'<svg role="img" aria-label="{_text(title)}" viewBox="0 0 600 40" '
            f'xmlns="http://www.w3.org/2000/svg" class="chart"><title>{_text(title)}</title>'
            f'<text x="10" y="24" {FONT}>{_text(empty)}</text></svg>'
        )
    totals = [
        sum(v or 0 for v in values) if stacked else max((v or 0 for v in values), default=0)
        for _, values in rows
    ]
    top = max(totals) or 1
    per_row = BAR_HEIGHT if stacked else BAR_HEIGHT * len(series)
    height = len(rows) * (per_row + ROW_GAP) + 34
    width = LABEL_WIDTH + BAR_AREA + VALUE_WIDTH
    parts = [
        f'<svg role="img" aria-label="{_text(title)}" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg" class="chart" data-testid="chart">',
        f"<title>{_text(title)}</title>",
    ]
    y = 4
    for (label, values), total in zip(rows, totals, strict=True):
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + per_row / 2 + 4:.0f}" text-anchor="end" '
            f"{FONT}>{_text(label[:18])}</text>"
        )
        x = float(LABEL_WIDTH)
        for index, (value, item) in enumerate(zip(values, series, strict=True)):
            if value is None:
                continue
            length = BAR_AREA * value / top
            bar_y = y if stacked else y + index * BAR_HEIGHT
            bar_x = x if stacked else LABEL_WIDTH
            parts.append(
                f'<rect x="{bar_x:.1f}" y="{bar_y}" width="{max(length, 0.5):.1f}" '
                f'height="{BAR_HEIGHT - 2}" fill="{item.colour}">'
                f"<title>{_text(item.name)}: {_text(shown(value))}</title></rect>"
            )
            if stacked:
                x += length
            else:
                parts.append(
                    f'<text x="{bar_x + length + 4:.1f}" y="{bar_y + BAR_HEIGHT - 3}" '
                    f"{FONT}>{_text(shown(value))}</text>"
                )
        if stacked:
            parts.append(
                f'<text x="{x + 4:.1f}" y="{y + BAR_HEIGHT - 3}" {FONT}>'
                f"{_text(shown(total))}</text>"
            )
        y += per_row + ROW_GAP
    parts.extend(legend(series, y + 8))
    parts.append("</svg>")
    return Markup("".join(parts))


def _heat_colour(value: int, top: int) -> str:
    """White to deep blue; an empty cell stays white."""
    if value <= 0 or top <= 0:
        return "#ffffff"
    share = value / top
    red = int(235 - 235 * share)
    green = int(243 - 129 * share)
    blue = int(255 - 77 * share)
    return f"#{red:02x}{green:02x}{blue:02x}"


RING_THIN, RING_THICK = 1.5, 4.0


def _mark_ink(value: int, top: int) -> str:
    """The sell-out count inside its ring: white on the darker cells, dark on the light."""
    return "#ffffff" if top > 0 and value / top > 0.55 else "#7c2d12"


def ring_width(count: int, top: int) -> float:
    """A sell-out ring's stroke: thin for one, thick for the busiest cell's count."""
    if count <= 0 or top <= 0:
        return 0.0
    return RING_THIN + (RING_THICK - RING_THIN) * count / top


def heatmap(
    grid: Sequence[Sequence[int]],
    marks: Sequence[Sequence[int]],
    *,
    weekdays: Sequence[str],
    title: str,
    value_name: str,
    mark_name: str,
    mark_legend: str | None = None,
    shares: Sequence[Sequence[float | None]] | None = None,
    share_name: str = "",
) -> Markup:
    """A weekday × hour grid shaded by `grid`; a cell where `marks` is non-zero (sell-outs)
    gets a ring whose width grows with the count (1.5 to 4 px, relative to the busiest
    cell's) and the count itself inside the ring, so "one sell-out" and "forty" differ at a
    glance and the exact figure is there to read. With `shares` (0..1, the attempts refused
    as sold out), a cell gets a purple bar along its foot as long as its share."""
    cell, left, top_margin = 24, 60, 22
    width = left + 24 * cell + 10
    height = top_margin + 7 * cell + (58 if shares is not None else 40)
    top = max((max(row) for row in grid), default=0)
    top_mark = max((max(row) for row in marks), default=0)
    parts = [
        f'<svg role="img" aria-label="{_text(title)}" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg" class="chart heat" data-testid="chart">',
        f"<title>{_text(title)}</title>",
    ]
    for hour in range(24):
        if hour % 2 == 0:
            parts.append(
                f'<text x="{left + hour * cell + cell / 2:.0f}" y="{top_margin - 6}" '
                f'text-anchor="middle" {FONT}>{hour:02d}</text>'
            )
    for weekday in range(7):
        y = top_margin + weekday * cell
        parts.append(
            f'<text x="{left - 6}" y="{y + cell / 2 + 4:.0f}" text-anchor="end" {FONT}>'
            f"{_text(weekdays[weekday])}</text>"
        )
        for hour in range(24):
            value, mark = grid[weekday][hour], marks[weekday][hour]
            share = shares[weekday][hour] if shares is not None else None
            x = left + hour * cell
            said = f" · {_text(share_name)} {share * 100:.0f}%" if share else ""
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cell - 1}" height="{cell - 1}" '
                f'fill="{_heat_colour(value, top)}" stroke="#e5e7eb">'
                f"<title>{_text(weekdays[weekday])} {hour:02d}:00 · {_text(value_name)} {value}"
                f"{f' · {_text(mark_name)} {mark}' if mark else ''}{said}</title></rect>"
            )
            if mark:
                ring = ring_width(mark, top_mark)
                parts.append(
                    f'<circle cx="{x + cell / 2 - 0.5}" cy="{y + cell / 2 - 0.5}" '
                    f'r="{cell / 2 - 1 - ring / 2:.2f}" fill="none" stroke="{PALETTE[3]}" '
                    f'stroke-width="{ring:.2f}" data-sellouts="{mark}"/>'
                    f'<text x="{x + cell / 2 - 0.5}" y="{y + cell / 2 + 3}" '
                    f'text-anchor="middle" font-family="system-ui, sans-serif" font-size="9" '
                    f'font-weight="700" fill="{_mark_ink(value, top)}">{mark}</text>'
                )
            # Over the ring, so that a sold-out hour still shows its share.
            if share:
                parts.append(
                    f'<rect x="{x}" y="{y + cell - 5}" width="{(cell - 1) * share:.1f}" '
                    f'height="4" fill="{PALETTE[4]}" data-share="{share:.4f}"/>'
                )
    legend_y = top_margin + 7 * cell + 12
    parts.append(
        f'<rect x="{left}" y="{legend_y}" width="12" height="12" fill="{_heat_colour(1, 1)}"/>'
        f'<text x="{left + 16}" y="{legend_y + 10}" {FONT}>{_text(value_name)} (max {top})</text>'
        f'<circle cx="{left + 226}" cy="{legend_y + 6}" r="6" fill="none" stroke="{PALETTE[3]}" '
        f'stroke-width="1.5"/><circle cx="{left + 244}" cy="{legend_y + 6}" r="5" fill="none" '
        f'stroke="{PALETTE[3]}" stroke-width="4"/><text x="{left + 256}" y="{legend_y + 10}" '
        f"{FONT}>{_text(mark_legend or mark_name)} (max {top_mark})</text>"
    )
    if shares is not None:
        parts.append(
            f'<rect x="{left}" y="{legend_y + 25}" width="16" height="4" '
            f'fill="{PALETTE[4]}"/><text x="{left + 20}" y="{legend_y + 30}" {FONT}>'
            f"{_text(share_name)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


@dataclass(frozen=True, slots=True)
class Span:
    """One row of the sell-out chart: the median and the slow end (p90) of the minutes from
    the release to the sell-out, and the share of sessions that sold out at all."""

    label: str
    median: float | None
    slow: float | None
    share: float | None  # 0..1
    share_text: str


SHARE_WIDTH = 90


def spans(
    rows: Sequence[Span],
    *,
    title: str,
    median_name: str,
    slow_name: str,
    share_name: str,
    shown: Callable[[float], str],
    never: str,
    empty: str = "",
) -> Markup:
    """Per row a solid bar to the median and a lighter one on to the slow end, both written
    out at the bar's end (time to sell out varies from minutes to days, so the words carry
    it where a short bar cannot), and on the right a small bar of the share sold out. A row
    that never sold out says so instead of a bar."""
    if not rows:
        return bars([], [], title=title, empty=empty)
    top = max((row.slow or row.median or 0 for row in rows), default=0) or 1
    area = BAR_AREA - 60
    text_x = LABEL_WIDTH + area + 8
    share_x = text_x + 190
    row_height = BAR_HEIGHT + ROW_GAP + 4
    width = share_x + SHARE_WIDTH + 50
    height = 22 + len(rows) * row_height + 34
    parts = [
        f'<svg role="img" aria-label="{_text(title)}" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg" class="chart" data-testid="chart">',
        f"<title>{_text(title)}</title>",
        f'<text x="{share_x}" y="12" {FONT}>{_text(share_name)}</text>',
    ]
    light, solid, share_colour = PALETTE[5], PALETTE[0], PALETTE[1]
    y = 22
    for row in rows:
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + BAR_HEIGHT - 3}" text-anchor="end" '
            f"{FONT}>{_text(row.label[:18])}</text>"
        )
        if row.median is None:
            parts.append(
                f'<text x="{LABEL_WIDTH}" y="{y + BAR_HEIGHT - 3}" fill="#6b7280" {FONT}>'
                f"{_text(never)}</text>"
            )
        else:
            slow = row.slow if row.slow is not None else row.median
            median_length = max(area * row.median / top, 1.0)
            slow_length = max(area * slow / top, median_length)
            parts.append(
                f'<rect x="{LABEL_WIDTH}" y="{y}" width="{slow_length:.1f}" '
                f'height="{BAR_HEIGHT - 2}" fill="{light}"><title>{_text(slow_name)}: '
                f"{_text(shown(slow))}</title></rect>"
                f'<rect x="{LABEL_WIDTH}" y="{y}" width="{median_length:.1f}" '
                f'height="{BAR_HEIGHT - 2}" fill="{solid}"><title>{_text(median_name)}: '
                f"{_text(shown(row.median))}</title></rect>"
                f'<text x="{text_x}" y="{y + BAR_HEIGHT - 3}" {FONT}>'
                f"{_text(shown(row.median))} · {_text(shown(slow))}</text>"
            )
        if row.share is not None:
            parts.append(
                f'<rect x="{share_x}" y="{y}" width="{SHARE_WIDTH}" height="{BAR_HEIGHT - 2}" '
                f'fill="#f1f5f9"/><rect x="{share_x}" y="{y}" '
                f'width="{max(SHARE_WIDTH * row.share, 0.5):.1f}" height="{BAR_HEIGHT - 2}" '
                f'fill="{share_colour}"><title>{_text(share_name)}: {_text(row.share_text)}'
                f"</title></rect>"
                f'<text x="{share_x + SHARE_WIDTH + 4}" y="{y + BAR_HEIGHT - 3}" {FONT}>'
                f"{_text(row.share_text)}</text>"
            )
        y += row_height
    parts.extend(
        legend(
            (
                Series(median_name, solid),
                Series(slow_name, light),
                Series(share_name, share_colour),
            ),
            y + 8,
        )
    )
    parts.append("</svg>")
    return Markup("".join(parts))
