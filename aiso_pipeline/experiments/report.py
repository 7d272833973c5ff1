"""Readouts as markdown: a decision line, a results table, a unicode forest plot of relative lift and CI per
metric, cost per converted user, and a page per experiment under <data dir>/reports/experiments/.

No plotting dependency: the forest plot is text in a code block, so it renders the same in the Dagster UI, in
a terminal and in any markdown viewer.

Experiment ids, variants and features come from landing files, so every one goes through md_text (tables,
headings, prose) or plain_label (the code block): a `|`, a newline or `<script>` in an id must neither break a
table nor reach the page as markup.
"""
from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Iterable

import duckdb

from aiso_pipeline.experiments.metrics import catalog
from aiso_pipeline.experiments.registry import safe_name
from aiso_pipeline.text import md_text, plain_label

PLOT_WIDTH = 41  # characters of the lift axis (odd, so 0 can sit in the middle)
DECISION_LABEL = {"ship": "SHIP", "stop": "STOP", "keep_running": "KEEP RUNNING", "invalid": "INVALID"}


def _ok(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def pct(x, signed: bool = True, digits: int = 1) -> str:
    if isinstance(x, float) and math.isinf(x):
        return "+∞" if x > 0 else "−∞"  # an unbounded interval (too few units to bound a ratio)
    if not _ok(x):
        return "–"
    return f"{x:+.{digits}%}" if signed else f"{x:.{digits}%}"


def value(metric: str, x) -> str:
    """A metric's mean in its unit (experiments/metrics.yaml)."""
    unit = catalog().metrics[metric].unit
    if not _ok(x):
        return "–"
    if unit == "rate":
        return f"{x:.2%}"
    if unit == "ms":
        return f"{x:,.0f} ms"
    return money(x)


def money(x) -> str:
    if not _ok(x):
        return "–"
    return f"${x:,.4f}" if abs(x) < 1 else f"${x:,.2f}"


def p_fmt(p) -> str:
    if not _ok(p):
        return "–"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def _ci(r: dict) -> str:
    return f"[{pct(r['ci_low'])}, {pct(r['ci_high'])}]"


def forest_plot(rows: list[dict], width: int = PLOT_WIDTH) -> str:
    """Relative lift (●, ◆ when significant) and its CI (├──┤) per metric × variant on one shared axis, 0 marked │
    (┼ where a CI crosses it).

    The axis is symmetric around 0 and covers every bound, up to ±max(100%, 2× the largest lift); longer
    intervals are cut and end in an arrow (◀ ▶).
    """
    if not rows:
        return "_no comparisons yet_"
    lifts = [abs(r["rel_lift"]) for r in rows if _ok(r["rel_lift"])]
    bounds = [abs(b) for r in rows for b in (r["ci_low"], r["ci_high"]) if _ok(b)]
    reach = max(bounds + lifts, default=0.0)
    limit = max(1.0, 2 * max(lifts, default=0.0))
    half = min(reach, limit) * 1.05 or 0.1
    mid = width // 2

    def col(x: float) -> int:
        return max(0, min(width - 1, round(mid + x / half * mid)))

    label_w = max(len(f"{r['metric']} · {plain_label(r['variant'])}") for r in rows)
    lines = []
    for r in rows:
        cells = [" "] * width
        cells[mid] = "│"
        lo, hi, est = r["ci_low"], r["ci_high"], r["rel_lift"]
        if _ok(lo) or _ok(hi):
            a = col(lo) if _ok(lo) else 0
            b = col(hi) if _ok(hi) else width - 1
            for i in range(a, b + 1):
                cells[i] = "─"
            cells[a] = "◀" if not _ok(lo) or lo < -half else "├"
            cells[b] = "▶" if not _ok(hi) or hi > half else "┤"
            if cells[mid] == "─":
                cells[mid] = "┼"  # the CI crosses 0
        if _ok(est):
            cells[col(est)] = "◆" if r["significant"] else "●"
        tag = "guardrail" if r["is_guardrail"] else r.get("metric_role", "")
        flag = ("HARM" if r["is_guardrail"] else "sig") if r["significant"] else ""
        label = f"{r['metric']} · {plain_label(r['variant'])}"
        lines.append(f"{label:<{label_w}}  {''.join(cells)}  {pct(est):>7} {_ci(r):<19} {tag:<9} {flag}".rstrip())
    axis = [" "] * width
    for x, text in ((-half, f"{-half:+.0%}"), (0.0, "0"), (half, f"{half:+.0%}")):
        c = col(x)
        start = max(0, min(width - len(text), c - len(text) // 2))
        axis[start:start + len(text)] = list(text)
    lines.append(f"{'':<{label_w}}  {''.join(axis)}")
    levels = sorted({r["ci_level"] for r in rows if _ok(r.get("ci_level"))}, reverse=True)
    legend = ("relative lift vs control: ● estimate, ◆ significant, ├─┤ CI "
              + " / ".join(f"{lv:.0%}" for lv in levels)
              + (" (guardrails: two one-sided bounds)" if any(r["is_guardrail"] for r in rows) else ""))
    return "```\n" + legend + "\n\n" + "\n".join(lines) + "\n```"


def _primary_rows(e) -> list[dict]:
    return [r for r in e.rows if r["metric_role"] == "primary"]


def mde_advice(e, project: bool = True) -> str:
    """Where the primary metric stands against its MDE: can waiting help? (`project`: say how long.)"""
    prim = _primary_rows(e)
    mdes = [r["mde"] for r in prim if _ok(r["mde"])]
    if not mdes:
        return "MDE: not computable yet (too few users or no variance in the primary metric)."
    mde = max(mdes)
    days = (e.window_end - e.start).days + 1
    target = e.config.target_mde
    text = f"Primary `{e.config.primary}`: detectable lift now {pct(mde, signed=False)} (80% power)"
    if target is None or not project:
        return text + (f", target {pct(target, signed=False)}." if target is not None else ".")
    text += f", target {pct(target, signed=False)}"
    if mde <= target:
        return text + ": the test is powered for the target; an effect that large would likely show by now."
    needed = [r["days_to_target_mde"] for r in prim if r.get("days_to_target_mde") is not None
              and not math.isnan(r["days_to_target_mde"])]
    if not needed:
        return text + "."
    more = max(needed)
    if math.isinf(more):
        return text + ": not reachable within 10 years at the current inflow; stop or widen the target."
    return (text + f": about {more:.0f} more day{'s' if more != 1 else ''} at the current inflow "
            f"({days} so far), with the same test.")


def decision_reason(e) -> str:
    """The rule that decided (stats.decision, as stored in decision_reason), with the split behind an SRM and the
    MDE advice while the experiment keeps running. Reasons quote variant names: escaped."""
    reason = md_text(e.rows[0].get("decision_reason") or "") if e.rows else ""
    if e.decision == "invalid":
        obs = ", ".join(f"{md_text(v)} {e.units[v]:,}" for v in e.variants)
        w = e.config.weights or {v: 1.0 for v in e.units}
        tw = sum(w.values()) or 1.0
        exp = ", ".join(f"{md_text(v)} {w.get(v, 0) / tw:.0%}" for v in e.variants)
        return f"{reason} Users {obs} vs expected {exp}. Fix the assignment or the logging and restart."
    if e.decision == "keep_running":
        return f"{reason} {mde_advice(e)}"
    return reason


def results_table(e) -> str:
    head = ["metric", "role", "variant", "control", "treatment", "rel. lift", "CI", "p", "p adj.", "sig.", "MDE",
            "CUPED θ"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in e.rows:
        lines.append("| " + " | ".join([
            r["metric"], r["metric_role"], md_text(r["variant"]), value(r["metric"], r["control_mean"]),
            value(r["metric"], r["mean"]), pct(r["rel_lift"]), _ci(r), p_fmt(r["p_value"]),
            p_fmt(r["p_value_adjusted"]), "yes" if r["significant"] else "", pct(r["mde"], signed=False),
            f"{r['cuped_theta']:.3g}" if r["cuped_theta"] else ""]) + " |")
    return "\n".join(lines)


def cost_table(e) -> str:
    cpc = e.cost_per_converted_user()
    lines = ["| variant | users | converted | conversion | cost (USD) | cost per user | cost per converted user |",
             "|---|---|---|---|---|---|---|"]
    for v in e.variants:
        s = e.sums.get(v)
        if s is None:
            lines.append(f"| {md_text(v)} | 0 | | | | | |")
            continue
        n, conv, cost = int(s["n"]), float(s["converted_users"] or 0), float(s["cost_usd"] or 0)
        lines.append(f"| {md_text(v)}{' (control)' if v == e.control else ''} | {n:,} | {conv:,.0f} | "
                     f"{pct(conv / n if n else None, signed=False, digits=2)} | ${cost:,.2f} | "
                     f"{money(cost / n if n else None)} | {money(cpc[v])} |")
    text = "\n".join(lines)
    base = cpc.get(e.control)
    tested = {r["variant"]: r for r in e.rows if r["metric"] == "cost_per_converted_user"}
    for v in e.variants:
        if v != e.control and _ok(cpc.get(v)) and _ok(base) and base:
            r = tested.get(v)
            test = (f", {_ci(r)}, p {p_fmt(r['p_value'])}" if r else "")  # the delta-method readout of the metric
            text += (f"\n\nCost per converted user: {md_text(v)} {money(cpc[v])} vs control "
                     f"{money(base)} ({pct(cpc[v] / base - 1)}{test}).")
    return text


def _trajectory_table(rows: list[tuple]) -> str:
    if not rows:
        return ""
    lines = ["| as of | variant | users (trt / ctl) | rel. lift | CI | p adj. | MDE | decision |",
             "|---|---|---|---|---|---|---|---|"]
    for d, v, units, cunits, lift, lo, hi, padj, mde, decision in rows[-28:]:
        lines.append(f"| {d} | {md_text(v)} | {units or 0:,} / {cunits or 0:,} | {pct(lift)} | "
                     f"[{pct(lo)}, {pct(hi)}] | {p_fmt(padj)} | {pct(mde, signed=False)} | {decision} |")
    return "\n".join(lines)


def experiment_markdown(e, as_of: str, trajectory: list[tuple] | None = None, level: int = 2) -> str:
    cfg = e.config
    h = "#" * level
    days = (e.window_end - e.start).days + 1
    ended = f", ended {cfg.end}" if cfg.end and cfg.end < dt.date.fromisoformat(as_of) else ""
    with_pre = sum(int(s["users_with_pre"] or 0) for s in e.sums.values())
    cuped = (f"CUPED on the 14 days before exposure ({with_pre:,} of {sum(e.units.values()):,} users have "
             "history there; the others count as 0)") if cfg.cuped else "CUPED off"
    method = (f"α = {cfg.alpha:g}, {'Holm' if cfg.correction == 'holm' else 'Benjamini-Hochberg'} over primary + "
              f"secondary, guardrails one-sided for harm, "
              f"{'sequential (confidence sequences, safe to peek daily)' if cfg.sequential else 'fixed horizon'}, "
              f"{cuped}")
    caps = [f"{m} capped at {v:g}" for m, v in cfg.cap.items()]
    caps += [f"{m} winsorized at the {q:.0%} quantile" for m, q in cfg.winsorize.items()]
    units = ", ".join(f"{md_text(v)}{' (control)' if v == e.control else ''} {e.units[v]:,}" for v in e.variants)
    out = [
        f"{h} {md_text(e.experiment_id)}: {DECISION_LABEL.get(e.decision, e.decision)}",
        "",
        *([f"_{cfg.description}_", ""] if cfg.description else []),
        f"As of {as_of}: data {e.start} .. {e.window_end} ({days} day{'s' if days != 1 else ''}{ended}); "
        f"metrics from {'all of the user' if cfg.scope == 'user' else 'the experiment'}'s inferences on "
        f"{', '.join(map(md_text, e.features)) or '–'}; "
        f"{'registry entry' if cfg.registered else 'not in the registry: defaults'}.",
        "",
        f"**Decision: {e.decision}**: {decision_reason(e)}",
        "",
        f"Users: {units}. SRM p = {p_fmt(e.srm_p_value)}{' **(mismatch)**' if e.srm_flag else ''}. "
        f"Excluded: {e.mixed_variant_users:,} user(s) seen in more than one variant"
        + (f", {e.rows_without_user:,} tagged inference(s) without user_id" if e.rows_without_user else "") + ".",
        "",
        mde_advice(e, project=False) if e.decision != "keep_running" else "",
        "",
        f"Method: {method}" + (f"; {'; '.join(caps)}" if caps else "") + ".",
        *([""] + [f"Note: {n}." for n in e.notes] if e.notes else []),
        "",
        forest_plot(e.rows),
        "",
        results_table(e),
        "",
        f"{h}# Cost per converted user",
        "",
        cost_table(e),
    ]
    if trajectory:
        out += ["", f"{h}# Primary metric by as-of day", "", _trajectory_table(trajectory)]
    return "\n".join(line for line in _squeeze(out)) + "\n"


def _squeeze(lines: Iterable[str]) -> Iterable[str]:
    blank = False
    for line in lines:
        if line == "":
            if not blank:
                yield line
            blank = True
        else:
            blank = False
            yield line


def mde_cell(r: dict) -> str:
    """The MDE, and with a target the days still needed at the current inflow."""
    text = pct(r["mde"], signed=False)
    more, target = r.get("days_to_target_mde"), r.get("target_mde")
    if target is None or more is None or math.isnan(more):
        return text
    if more == 0:
        return f"{text} (target {pct(target, signed=False)} reached)"
    return f"{text} (target {pct(target, signed=False)}: " + ("out of reach)" if math.isinf(more) else
                                                             f"{more:.0f} more days)")


def summary_table(summary) -> str:
    lines = ["| experiment | decision | primary | lift | CI | p adj. | MDE | users | SRM p | mixed users |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for e in summary.experiments:
        for r in _primary_rows(e) or [None]:
            if r is None:
                lines.append(f"| {md_text(e.experiment_id)} | {e.decision} | | | | | | {sum(e.units.values()):,} | "
                             f"{p_fmt(e.srm_p_value)} | {e.mixed_variant_users:,} |")
                continue
            lines.append(f"| {md_text(e.experiment_id)} | **{e.decision}** | {r['metric']} ({md_text(r['variant'])}) | "
                         f"{pct(r['rel_lift'])} | {_ci(r)} | {p_fmt(r['p_value_adjusted'])} | "
                         f"{mde_cell(r)} | {sum(e.units.values()):,} | {p_fmt(e.srm_p_value)} | "
                         f"{e.mixed_variant_users:,} |")
    return "\n".join(lines)


def summary_markdown(summary, detailed: int = 20) -> str:
    """The UI readout: the summary table, then a full section per experiment (the first `detailed`; the rest
    are on their report pages)."""
    if not summary.experiments:
        # the reasons quote data (a variant's name): escaped like every other value
        skipped = "".join(f"\n- {md_text(k)}: {md_text(v)}" for k, v in summary.skipped.items())
        return f"_no experiment readouts as of {summary.dt}_" + skipped
    parts = [f"# Experiment readouts as of {summary.dt}", "", summary_table(summary)]
    if summary.skipped:
        parts += ["", "Not read out: " + "; ".join(f"{md_text(k)} ({md_text(v)})" for k, v in summary.skipped.items())
                  + "."]
    for e in summary.experiments[:detailed]:
        parts += ["", experiment_markdown(e, summary.dt)]
    rest = summary.experiments[detailed:]
    if rest:
        parts += ["", f"{len(rest)} more experiment(s) ({', '.join(md_text(e.experiment_id) for e in rest)}): see "
                      "`reports/experiments/<experiment_id>.md`."]
    return "\n".join(parts)


def write_pages(con: duckdb.DuckDBPyConnection, summary, reports_dir: Path) -> list[Path]:
    """reports/experiments/<experiment_id>.md per experiment (with its trajectory) and an _index.md."""
    from aiso_pipeline.experiments.engine import trajectory

    folder = Path(reports_dir) / "experiments"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    as_of = dt.date.fromisoformat(summary.dt)
    for e in summary.experiments:
        path = folder / f"{safe_name(e.experiment_id)}.md"
        text = f"# Experiment readout\n\n" + experiment_markdown(e, summary.dt, trajectory(con, e.experiment_id, as_of))
        path.write_text(text)
        paths.append(path)
    index = folder / "_index.md"  # experiment ids never start with _ here (safe_name strips it)
    links = "\n".join(f"- [{md_text(e.experiment_id)}]({safe_name(e.experiment_id)}.md): {e.decision}"
                      for e in summary.experiments)
    skipped = "".join(f"\n- {md_text(k)}: {md_text(v)}" for k, v in summary.skipped.items())
    skipped = f"\nNot read out (no readout rows as of this day):\n{skipped}\n" if skipped else ""
    index.write_text(f"# Experiment readouts as of {summary.dt}\n\n{summary_table(summary)}\n\n{links}\n{skipped}")
    paths.append(index)
    return paths
