"""Markdown charts for asset metadata (the Dagster UI renders markdown; matplotlib is not a dependency).

Shades are unicode block characters scaled to the largest value shown, followed by the number itself, so the
chart still reads exactly when the blocks only hint.
"""
from __future__ import annotations

from datetime import date

SHADES = " ░▒▓█"
BARS = "▁▂▃▄▅▆▇█"


def _shade(value: float | None, top: float) -> str:
    if value is None:
        return "·"
    level = 0 if top <= 0 else min(len(SHADES) - 1, round(value / top * (len(SHADES) - 1)))
    return SHADES[level] * 2


def _bar(value: float | None, top: float) -> str:
    if value is None:
        return "·"
    return BARS[0 if top <= 0 else min(len(BARS) - 1, int(value / top * (len(BARS) - 1) + 0.5))]


def _fmt(value: float | None, money: bool = False) -> str:
    if value is None:
        return "–"
    return f"${value:,.2f}" if money else f"{value:,.0f}"


def latency_heatmap(rows: list[tuple[int, str, float | None]]) -> str:
    """rows: (hour, model, p95 latency ms) → a hour × model table; darker = slower."""
    if not rows:
        return "_no latency data for this day_"
    models = sorted({m for _, m, _ in rows})
    cells = {(h, m): v for h, m, v in rows}
    top = max((v for v in cells.values() if v is not None), default=0.0)
    lines = ["| hour (UTC) | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    for hour in range(24):
        if not any((hour, m) in cells for m in models):
            continue
        line = " | ".join(f"{_shade(cells.get((hour, m)), top)} {_fmt(cells.get((hour, m)))}" for m in models)
        lines.append(f"| {hour:02d} | {line} |")
    return "p95 latency (ms, weighted), darker = slower\n\n" + "\n".join(lines)


def cost_trend(rows: list[tuple[date, str, float | None, float | None]]) -> str:
    """rows: (dt, model, cost_usd, requests) → a sparkline per model plus a day × model table."""
    if not rows:
        return "_no cost data yet_"
    days = sorted({d for d, *_ in rows})
    models = sorted({m for _, m, *_ in rows})
    cost = {(d, m): c for d, m, c, _ in rows}
    spark = ["| model | trend | first day | last day | total |", "|---|---|---|---|---|"]
    for m in models:
        series = [cost.get((d, m)) for d in days]
        top = max((c for c in series if c is not None), default=0.0)
        priced = [c for c in series if c is not None]
        total = sum(priced) if priced else None
        spark.append(f"| {m} | {''.join(_bar(c, top) for c in series)} | {_fmt(series[0], True)} | "
                     f"{_fmt(series[-1], True)} | {_fmt(total, True)} |")
    top = max((c for c in cost.values() if c is not None), default=0.0)
    table = ["| dt | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    for d in days:
        table.append(f"| {d} | " + " | ".join(
            f"{_bar(cost.get((d, m)), top)} {_fmt(cost.get((d, m)), True)}" for m in models) + " |")
    return (f"cost per model (USD, weighted), {days[0]} .. {days[-1]}; – = no priced calls\n\n"
            + "\n".join(spark) + "\n\n" + "\n".join(table))
