"""The cycle analytics charts as server-rendered SVG (no JavaScript, no library).

Each chart is one <svg role="img"> named by its <title> (aria-labelledby) and described by
its <desc> (aria-describedby),
text labels on the bars, and a <title> on every bar for the pointer; the page puts a data
table with the same numbers beside each one. Styling is by presentation attributes, not a
<style> element: pages carry a CSP (style-src 'self'). Bars carry `data-*` attributes with
their numbers so tests (and anyone scraping) read them without guessing at geometry.
"""

from __future__ import annotations

from html import escape

from .analytics import OUTCOMES, RATINGS, CycleAnalytics, OutcomeRow, RatingRow, StateTime

FONT = 'font-family="sans-serif" font-size="12" fill="#1d2330"'
MUTED = 'font-family="sans-serif" font-size="11" fill="#5d6677"'
WIDTH = 780  # the bar's end notes ("mean 2.17 (+0.17) · n 12") fit
LABEL_W = 170  # the row labels' column
BAR_W = 400
ROW_H, GAP = 22, 10
TOP = 34  # room for the legend

OUTCOME_COLOURS = {
    "promoted": "#2e7d32",
    "not_promoted": "#c62828",
    "declined": "#ef6c00",
    "withdrawn": "#8d8d8d",
    "open": "#2454c6",
}
RATING_COLOURS = {"below": "#c62828", "meets": "#2454c6", "exceeds": "#2e7d32"}


def _e(value) -> str:
    return escape(str(value), quote=True)


def _open(chart_id: str, title: str, desc: str, height: int) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{chart_id}" class="analytics-chart" '
        f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="{chart_id}-title" aria-describedby="{chart_id}-desc">',
        f'<title id="{chart_id}-title">{_e(title)}</title>',
        f'<desc id="{chart_id}-desc">{_e(desc)}</desc>',
    ]


def _legend(items: list[tuple[str, str, str]]) -> list[str]:
    parts, x = [], LABEL_W
    for _key, label, colour in items:
        parts += [
            f'<rect x="{x}" y="6" width="12" height="12" fill="{colour}"/>',
            f'<text x="{x + 16}" y="16" {FONT}>{_e(label)}</text>',
        ]
        x += 24 + 7 * len(label)
    return parts


def _empty(chart_id: str, title: str, message: str) -> str:
    parts = _open(chart_id, title, message, 40)
    parts += [f'<text x="0" y="24" {MUTED}>{_e(message)}</text>', "</svg>"]
    return "".join(parts)


def _stacked(
    chart_id: str,
    title: str,
    desc: str,
    rows: list[tuple[str, dict[str, int], str]],
    segments: list[tuple[str, str, str]],
    *,
    share: bool,
) -> str:
    """Horizontal bars, one per row, cut into segments (counts or, with `share`, shares of
    the row's total); `rows` are (label, counts by segment key, text at the bar's end)."""
    if not rows:
        return _empty(chart_id, title, "No data yet.")
    height = TOP + len(rows) * (ROW_H + GAP)
    longest = max(sum(counts.values()) for _l, counts, _n in rows) or 1
    parts = _open(chart_id, title, desc, height)
    parts += _legend(segments)
    for i, (label, counts, note) in enumerate(rows):
        y = TOP + i * (ROW_H + GAP)
        total = sum(counts.values())
        scale = BAR_W / (total if share else longest) if total else 0
        parts += [
            f'<text x="0" y="{y + 15}" {FONT}>{_e(label)}</text>',
            f'<rect x="{LABEL_W}" y="{y}" width="{BAR_W}" height="{ROW_H}" fill="#eef1f6"/>',
        ]
        x = float(LABEL_W)
        for key, seg_label, colour in segments:
            n = counts.get(key, 0)
            if not n:
                continue
            w = n * scale
            pct = f" ({round(100 * n / total)}%)" if share else ""
            parts.append(
                f'<rect class="bar" data-row="{_e(label)}" data-key="{key}" data-count="{n}" '
                f'x="{x:.1f}" y="{y}" width="{w:.1f}" height="{ROW_H}" fill="{colour}">'
                f"<title>{_e(label)}: {_e(seg_label)} {n}{pct}</title></rect>"
            )
            if w >= 18:
                parts.append(
                    f'<text x="{x + w / 2:.1f}" y="{y + 15}" text-anchor="middle" '
                    f'font-family="sans-serif" font-size="12" fill="#fff">{n}</text>'
                )
            x += w
        parts.append(f'<text x="{LABEL_W + BAR_W + 8}" y="{y + 15}" {FONT}>{_e(note)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def coverage_histogram_svg(analytics: CycleAnalytics) -> str:
    cov = analytics.coverage
    chart_id, title = "chart-coverage", "Coverage at submission"
    if not cov.values:
        return _empty(chart_id, title, "No packet has been submitted in this cycle.")
    n_buckets = len(cov.buckets)
    plot_h, base = 160, 30 + 160
    height = base + 40
    slot = (WIDTH - 40) / n_buckets
    tallest = max(b.count for b in cov.buckets) or 1
    median = cov.median
    desc = (
        f"{len(cov.values)} packets submitted; median coverage {round(median * 100)}%; "
        f"{cov.below_minimum} below the cycle minimum of {round(cov.min_coverage * 100)}%."
    )
    parts = _open(chart_id, title, desc, height)
    parts.append(
        f'<line x1="20" y1="{base}" x2="{WIDTH - 20}" y2="{base}" stroke="#5d6677" '
        f'stroke-width="1"/>'
    )
    for i, b in enumerate(cov.buckets):
        x = 20 + i * slot
        h = plot_h * b.count / tallest
        colour = "#c62828" if b.high <= cov.min_coverage else "#2454c6"
        parts.append(
            f'<rect class="bar" data-key="{_e(b.label)}" data-count="{b.count}" '
            f'x="{x + 4:.1f}" y="{base - h:.1f}" width="{slot - 8:.1f}" height="{h:.1f}" '
            f'fill="{colour}"><title>{_e(b.label)}: {b.count} packets</title></rect>'
        )
        if b.count:
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{base - h - 4:.1f}" text-anchor="middle" '
                f"{FONT}>{b.count}</text>"
            )
        parts.append(
            f'<text x="{x + slot / 2:.1f}" y="{base + 16}" text-anchor="middle" {MUTED}>'
            f"{_e(b.label)}</text>"
        )
    # the cycle's minimum, as a dashed rule across the axis
    mx = 20 + cov.min_coverage * (WIDTH - 40)
    parts += [
        f'<line class="minimum" x1="{mx:.1f}" y1="22" x2="{mx:.1f}" y2="{base}" '
        f'stroke="#1d2330" stroke-dasharray="4 3" stroke-width="1.5"/>',
        f'<text x="{mx + 4:.1f}" y="16" {FONT}>minimum {round(cov.min_coverage * 100)}%</text>',
        f'<text x="20" y="{base + 34}" {MUTED}>median {round(median * 100)}% · '
        f"{len(cov.values)} submitted</text>",
        "</svg>",
    ]
    return "".join(parts)


def _outcomes_svg(chart_id: str, title: str, rows: list[OutcomeRow]) -> str:
    """Stacked outcome counts per row (a target level, or a reviewing manager)."""
    desc = "; ".join(
        f"{r.label}: " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in r.counts.items() if n)
        for r in rows
    )
    return _stacked(
        chart_id,
        title,
        desc or "No packets.",
        [(r.label, r.counts, f"{r.total} packet{'' if r.total == 1 else 's'}") for r in rows],
        [(k, label, OUTCOME_COLOURS[k]) for k, label in OUTCOMES],
        share=False,
    )


def outcomes_by_level_svg(analytics: CycleAnalytics) -> str:
    return _outcomes_svg("chart-outcomes-level", "Outcomes by target level", analytics.by_level)


def outcomes_by_manager_svg(analytics: CycleAnalytics) -> str:
    return _outcomes_svg(
        "chart-outcomes-manager", "Outcomes by reviewing manager", analytics.by_manager
    )


def _rating_note(row: RatingRow, cycle_mean: float | None) -> str:
    if row.mean is None:
        return "no ratings"
    note = f"mean {row.mean:.2f}"
    if row.key is not None and cycle_mean is not None:
        note += f" ({row.mean - cycle_mean:+.2f})"
    return f"{note} · n {row.total}"


def ratings_svg(analytics: CycleAnalytics) -> str:
    cycle = analytics.ratings_cycle
    if not cycle.total:
        return _empty("chart-ratings", "Ratings by reviewer", "No assessments in this cycle.")
    rows = [cycle, *analytics.ratings_by_manager]
    desc = (
        f"Share of below, meets and exceeds per reviewer beside the whole cycle "
        f"(mean {cycle.mean:.2f} on 1 below, 2 meets, 3 exceeds). "
        + "; ".join(f"{r.label}: mean {r.mean:.2f}" for r in analytics.ratings_by_manager)
    )
    return _stacked(
        "chart-ratings",
        "Ratings by reviewer",
        desc,
        [(r.label, r.counts, _rating_note(r, cycle.mean)) for r in rows],
        [(k, label, RATING_COLOURS[k]) for k, label in RATINGS],
        share=True,
    )


def duration_text(seconds: float | None) -> str:
    """A duration in the unit that reads best: seconds, minutes, hours or days."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def time_in_state_svg(analytics: CycleAnalytics) -> str:
    chart_id, title = "chart-time-in-state", "Time in each state"
    rows: list[StateTime] = analytics.time_in_state
    done = [t for t in rows if t.count]
    if not done:
        return _empty(chart_id, title, "No packet has left a state yet.")
    longest = max(t.percentile(0.9) for t in done) or 1.0
    height = TOP + len(rows) * (ROW_H + GAP) + 20
    desc = "; ".join(
        f"{t.label}: median {duration_text(t.percentile(0.5))}, "
        f"middle half {duration_text(t.percentile(0.25))}–{duration_text(t.percentile(0.75))}, "
        f"90th percentile {duration_text(t.percentile(0.9))} ({t.count} stays)"
        for t in done
    )
    parts = _open(chart_id, title, desc, height)
    parts += [
        f'<text x="{LABEL_W}" y="16" {MUTED}>box: 25th–75th percentile · bar: median · '
        f"whisker: to the 90th</text>",
    ]

    def px(seconds: float) -> float:
        return LABEL_W + BAR_W * min(seconds, longest) / longest

    for i, t in enumerate(rows):
        y = TOP + i * (ROW_H + GAP)
        parts.append(f'<text x="0" y="{y + 15}" {FONT}>{_e(t.label)}</text>')
        if not t.count:
            note = f"in it now: {t.current}" if t.current else "no stays"
            parts.append(f'<text x="{LABEL_W}" y="{y + 15}" {MUTED}>{_e(note)}</text>')
            continue
        p25, p50, p75, p90 = (t.percentile(q) for q in (0.25, 0.5, 0.75, 0.9))
        mid = y + ROW_H / 2
        box_w = max(2.0, px(p75) - px(p25))
        parts += [
            f'<line x1="{px(p25):.1f}" y1="{mid}" x2="{px(p90):.1f}" y2="{mid}" '
            f'stroke="#5d6677" stroke-width="1.5"/>',
            f'<rect class="bar" data-key="{t.state}" data-count="{t.count}" '
            f'data-median="{p50:.1f}" x="{px(p25):.1f}" y="{y + 3}" width="{box_w:.1f}" '
            f'height="{ROW_H - 6}" fill="#9bb3ea" stroke="#2454c6">'
            f"<title>{_e(t.label)}: median {duration_text(p50)}</title></rect>",
            f'<line class="median" x1="{px(p50):.1f}" y1="{y}" x2="{px(p50):.1f}" '
            f'y2="{y + ROW_H}" stroke="#1d2330" stroke-width="2.5"/>',
            f'<text x="{LABEL_W + BAR_W + 8}" y="{y + 15}" {FONT}>median '
            f"{duration_text(p50)} · n {t.count}</text>",
        ]
    axis_y = TOP + len(rows) * (ROW_H + GAP) + 4
    parts += [
        f'<text x="{LABEL_W}" y="{axis_y + 10}" {MUTED}>0</text>',
        f'<text x="{LABEL_W + BAR_W}" y="{axis_y + 10}" text-anchor="end" {MUTED}>'
        f"{duration_text(longest)}</text>",
        "</svg>",
    ]
    return "".join(parts)


def cycle_charts(analytics: CycleAnalytics) -> dict[str, str]:
    return {
        "coverage": coverage_histogram_svg(analytics),
        "by_level": outcomes_by_level_svg(analytics),
        "by_manager": outcomes_by_manager_svg(analytics),
        "ratings": ratings_svg(analytics),
        "time_in_state": time_in_state_svg(analytics),
    }
