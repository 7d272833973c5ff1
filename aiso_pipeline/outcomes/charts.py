"""Markdown charts for asset metadata (the Dagster UI renders markdown; matplotlib is not a dependency).

Shades and bars are unicode block characters next to the number itself, so a chart still reads exactly when
the blocks only hint.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from datetime import date

from aiso_pipeline.text import md_text

SHADES = ("░░", "▒▒", "▓▓", "██")  # quartiles of the values shown
BARS = "▁▂▃▄▅▆▇█"
MISSING = "·"


def _shade(value: float | None, ranked: list[float]) -> str:
    """Shade by rank among all cells, not by value: one timeout-bound 30 s cell must not wash out the rest."""
    if value is None or math.isnan(value):
        return MISSING * 2
    share = bisect_right(ranked, value) / len(ranked)  # in (0, 1]
    return SHADES[min(len(SHADES) - 1, int((share - 1e-9) * len(SHADES)))]


def _bar(value: float | None, low: float, high: float) -> str:
    # low/high are finite (see _finite_range); a sum that overflowed to ±inf (e.g. two reported costs of 1e308)
    # gets the end bar instead of raising on round(nan), which failed the whole cost_daily asset
    if value is None or math.isnan(value):
        return MISSING
    if math.isinf(value):
        return BARS[-1] if value > 0 else BARS[0]
    if high <= low:
        return BARS[len(BARS) // 2]
    share = min(1.0, max(0.0, (value - low) / (high - low)))
    return BARS[round(share * (len(BARS) - 1))] if math.isfinite(share) else BARS[len(BARS) // 2]


def _finite_range(values) -> tuple[float, float]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return (min(finite), max(finite)) if finite else (0.0, 0.0)


def _fmt(value: float | None, money: bool = False) -> str:
    if value is None:
        return "–"
    if not math.isfinite(value):
        return "overflow" if math.isinf(value) else "NaN"
    if abs(value) >= 1e15:  # a 1e308 latency would print 300 digits
        return f"${value:.3g}" if money else f"{value:.3g}"
    return f"${value:,.2f}" if money else f"{value:,.0f}"


def latency_heatmap(rows: list[tuple[int, str, float | None]]) -> str:
    """rows: (hour, model, p95 latency ms) → a hour × model table; darker = slower."""
    if not rows:
        return "_no latency data for this day_"
    models = sorted({m for _, m, _ in rows})
    cells = {(h, m): v for h, m, v in rows}
    ranked = sorted(v for v in cells.values() if v is not None)
    # model names come from landing files: escaped so `|`, newlines or HTML cannot break or inject into the table
    lines = ["| hour (UTC) | " + " | ".join(md_text(m) for m in models) + " |", "|---|" + "---|" * len(models)]
    for hour in range(24):
        if not any((hour, m) in cells for m in models):
            continue
        line = " | ".join(f"{_shade(cells.get((hour, m)), ranked)} {_fmt(cells.get((hour, m)))}" for m in models)
        lines.append(f"| {hour:02d} | {line} |")
    return "p95 latency (ms, weighted); darker = slower quartile of the cells shown\n\n" + "\n".join(lines)


def cost_trend(rows: list[tuple[date, str, float | None, float | None]]) -> str:
    """rows: (dt, model, cost_usd, requests) → a sparkline per model plus a day × model table."""
    if not rows:
        return "_no cost data yet_"
    days = sorted({d for d, *_ in rows})
    models = sorted({m for _, m, *_ in rows})
    cost = {(d, m): c for d, m, c, _ in rows}
    spark = ["| model | trend (min..max of the model) | first day | last day | total |", "|---|---|---|---|---|"]
    for m in models:
        series = [cost.get((d, m)) for d in days]
        priced = [c for c in series if c is not None]
        low, high = _finite_range(priced)
        spark.append(f"| {md_text(m)} | {''.join(_bar(c, low, high) for c in series)} | {_fmt(series[0], True)} | "
                     f"{_fmt(series[-1], True)} | {_fmt(sum(priced) if priced else None, True)} |")
    top = _finite_range(cost.values())[1]
    table = ["| dt | " + " | ".join(md_text(m) for m in models) + " |", "|---|" + "---|" * len(models)]
    for d in days:
        table.append(f"| {d} | " + " | ".join(
            f"{_bar(cost.get((d, m)), 0.0, top)} {_fmt(cost.get((d, m)), True)}" for m in models) + " |")
    return (f"cost per model (USD, weighted), {days[0]} .. {days[-1]}; – = no priced calls\n\n"
            + "\n".join(spark) + "\n\n" + "\n".join(table))
