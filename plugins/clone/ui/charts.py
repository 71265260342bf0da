"""Inline SVG bar charts (no JavaScript, no CDN): each bar carries ``data-day``, ``data-series`` and
``data-value`` so a test (or a reader of the page source) can check it against the recorded data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

WIDTH, HEIGHT, PAD = 720, 160, 28
COLOURS = {"pushed": "#2f855a", "autofixed": "#d69e2e", "failed": "#c53030", "skipped": "#718096",
           "no change": "#a0aec0", "local": "#805ad5", "commits": "#2b6cb0", "green": "#38a169", "red": "#e53e3e",
           "tokens": "#4a5568", "budget": "#c53030"}


def stacked_bars(chart_id: str, title: str, days: Sequence[str], series: Mapping[str, Sequence[int]],
                 line: tuple[str, Sequence[int]] | None = None) -> str:
    """Bars per day stacked by series (in order), with an optional line (a budget) on the same scale."""
    totals = [sum(values[i] for values in series.values()) for i in range(len(days))]
    top = max([*totals, *(line[1] if line else ()), 1])
    step = (WIDTH - PAD) / max(len(days), 1)
    scale = (HEIGHT - PAD) / top
    parts = [f'<svg id="{escape(chart_id)}" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{escape(title)}" data-max="{top}"><title>{escape(title)}</title>',
             f'<text x="2" y="12" font-size="10">{top}</text>',
             f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH}" y2="{HEIGHT - PAD}" stroke="#999"/>']
    for i, day in enumerate(days):
        y = HEIGHT - PAD
        for name, values in series.items():
            value = values[i]
            if value <= 0:
                continue
            h = value * scale
            y -= h
            parts.append(f'<rect x="{PAD + i * step + 1:.1f}" y="{y:.1f}" width="{max(step - 2, 1):.1f}" '
                         f'height="{h:.1f}" fill="{COLOURS.get(name, "#333")}" data-day="{day}" '
                         f'data-series="{escape(name)}" data-value="{value}"><title>{day} {escape(name)}: '
                         f'{value}</title></rect>')
        if i % max(len(days) // 6, 1) == 0:
            parts.append(f'<text x="{PAD + i * step:.1f}" y="{HEIGHT - 8}" font-size="9">{day[5:]}</text>')
    if line and any(line[1]):
        points = " ".join(f"{PAD + (i + 0.5) * step:.1f},{HEIGHT - PAD - v * scale:.1f}"
                          for i, v in enumerate(line[1]))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{COLOURS.get(line[0], "#c53030")}" '
                     f'stroke-dasharray="4 3" data-series="{escape(line[0])}" '
                     f'data-values="{",".join(str(v) for v in line[1])}"/>')
    legend = [*series, *([line[0]] if line else [])]
    for j, name in enumerate(legend):
        parts.append(f'<rect x="{PAD + j * 90}" y="2" width="10" height="10" fill="{COLOURS.get(name, "#333")}"/>'
                     f'<text x="{PAD + j * 90 + 14}" y="11" font-size="10">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def fleet_charts(series: Sequence[Mapping[str, object]]) -> str:
    """The page's three pictures from :func:`clone.ui.view.daily_series`."""
    days = [str(d["day"]) for d in series]
    passes = {name: [int(d["passes"][name]) for d in series] for name in  # type: ignore[index]
              ("pushed", "autofixed", "failed", "skipped", "no change", "local")}
    return "".join([
        "<h2>Passes per day, by outcome</h2>", stacked_bars("chart-passes", "passes per day", days, passes),
        "<h2>Commits landed per day</h2>",
        stacked_bars("chart-commits", "commits per day", days, {"commits": [int(d["commits"]) for d in series]}),
        "<h2>CI green / red per day</h2>",
        stacked_bars("chart-ci", "CI per day", days, {"green": [int(d["ci_green"]) for d in series],
                                                      "red": [int(d["ci_red"]) for d in series]}),
        "<h2>Tokens per day against the budget</h2>",
        stacked_bars("chart-tokens", "tokens per day", days, {"tokens": [int(d["tokens"]) for d in series]},
                     line=("budget", [int(d["budget"]) for d in series])),
    ])
