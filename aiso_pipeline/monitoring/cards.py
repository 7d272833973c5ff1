"""Model cards: one page per model (Markdown and HTML under reports/model_cards/), regenerated with the scorecard
from measured data: the scorecard, traffic and cost, calibration, drift history, slices, a dated decision log of
the experiments that ran on the model, open anomalies as known issues, and the owner (reference/monitoring.yaml:
model_owners). Every value from the data is escaped (md_text in Markdown, html.escape in HTML)."""
from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass
from pathlib import Path

import duckdb

from aiso_pipeline.text import md_text, safe_slug

HISTORY_DAYS = 30


@dataclass
class Section:
    title: str
    columns: list[str]
    rows: list[tuple]
    empty: str = "nothing this period"
    links: dict[int, str] | None = None  # column index -> column holding the link target (relative path)


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _markdown(model: str, header: list[str], sections: list[Section]) -> str:
    out = [f"# Model card: {md_text(model)}", "", *[f"- {h}" for h in header]]
    for s in sections:
        out += ["", f"## {s.title}", ""]
        if not s.rows:
            out.append(f"_{s.empty}_")
            continue
        shown = [c for i, c in enumerate(s.columns) if i not in (s.links or {}).values()]
        out += ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
        for r in s.rows:
            cells = []
            for i, v in enumerate(r):
                if i in (s.links or {}).values():
                    continue
                text = md_text(_cell(v))
                target = (s.links or {}).get(i)
                cells.append(f"[{text}]({r[target]})" if target is not None and r[target] else text)
            out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def _html(model: str, header: list[str], sections: list[Section]) -> str:
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'>", f"<title>Model card: {e(model)}</title>",
             "<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left}.fail{background:#f8d7da}"
             ".warn{background:#fff3cd}.pass{background:#d4edda}</style></head><body>",
             f"<h1>Model card: {e(model)}</h1><ul>" + "".join(f"<li>{e(h)}</li>" for h in header) + "</ul>"]
    for s in sections:
        parts.append(f"<h2>{e(s.title)}</h2>")
        if not s.rows:
            parts.append(f"<p><em>{e(s.empty)}</em></p>")
            continue
        hidden = set((s.links or {}).values())
        parts.append("<table><tr>" + "".join(f"<th>{e(c)}</th>" for i, c in enumerate(s.columns) if i not in hidden)
                     + "</tr>")
        for r in s.rows:
            cells = []
            for i, v in enumerate(r):
                if i in hidden:
                    continue
                text, target = e(_cell(v)), (s.links or {}).get(i)
                css = f" class='{e(str(v))}'" if v in ("pass", "warn", "fail") else ""
                if target is not None and r[target]:
                    text = f"<a href='{e(str(r[target]))}'>{text}</a>"
                cells.append(f"<td{css}>{text}</td>")
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</table>")
    return "".join(parts) + "</body></html>\n"


def _rows(con, sql: str, params: list) -> list[tuple]:
    return con.execute(sql, params).fetchall()


def write_cards(con: duckdb.DuckDBPyConnection, day: str, reports: Path, owners: dict[str, str]) -> list[Path]:
    """reports/model_cards/<model>.md and .html for every model in the day's scorecard, and an index."""
    folder = Path(reports) / "model_cards"
    folder.mkdir(parents=True, exist_ok=True)
    since = dt.date.fromisoformat(day) - dt.timedelta(days=HISTORY_DAYS - 1)
    models = [r[0] for r in _rows(con, "SELECT model FROM marts.scorecard WHERE dt = ? ORDER BY model", [day])]
    paths, index = [], []
    for model in models:
        score, failing = _rows(con, "SELECT visibility_score, failing FROM marts.scorecard WHERE dt = ? AND model = ?",
                               [day, model])[0]
        owner = owners.get(model, "unassigned (reference/monitoring.yaml: model_owners)")
        header = [f"as of {day}", f"owner: {owner}",
                  f"visibility score: {score:.0f} / 100" if score is not None else "visibility score: n/a",
                  f"failing: {failing or 'nothing'}"]
        sections = [
            Section("Scorecard", ["check", "value", "target", "status", "reason"], _rows(con, """
                SELECT check_name, value, target, status, reason FROM marts.scorecard_checks
                WHERE dt = ? AND model = ? ORDER BY status = 'fail' DESC, status = 'warn' DESC, check_name""",
                [day, model])),
            Section("Traffic, cost and outcomes (last 30 days)",
                    ["day", "requests", "cost $", "join rate", "cost per success $", "cost per conversion $",
                     "p95 latency ms", "error rate", "score"], _rows(con, """
                SELECT dt, requests, cost_usd, join_rate, cost_per_success, cost_per_conversion, latency_p95_ms,
                       error_rate, visibility_score
                FROM marts.scorecard WHERE model = ? AND dt BETWEEN ? AND ? ORDER BY dt DESC""", [model, since, day])),
            Section("Calibration", ["feature", "calls", "Brier", "ECE", "mean confidence", "success rate"], _rows(con, """
                SELECT feature, n, brier, ece, mean_confidence, success_rate FROM marts.calibration
                WHERE dt = ? AND model = ? ORDER BY n DESC""", [day, model]), "no confidence reported"),
            Section("Drift history (last 30 days)", ["day", "column", "severity", "score", "episode since",
                                                     "detection delay h"], _rows(con, """
                SELECT dt, metric, severity, score, episode_start, detection_delay_hours FROM marts.anomalies
                WHERE kind = 'drift' AND model = ? AND dt BETWEEN ? AND ? ORDER BY dt DESC, metric""",
                [model, since, day]), "no drift alert"),
            Section("Slices", ["feature", "input", "value", "requests", "success rate", "gap to model", "p adj.",
                               "worse"], _rows(con, """
                SELECT feature, slice_key, slice_value, requests, success_rate, gap_vs_model, p_value_adjusted, worse
                FROM marts.slice_metrics WHERE dt = ? AND model = ? AND tested
                ORDER BY worse DESC, gap_vs_model LIMIT 15""", [day, model]), "no slice with enough traffic"),
            Section("Decision log", ["day", "experiment", "decision", "reason", "readout"], _rows(con, """
                WITH seen AS (SELECT DISTINCT experiment_id FROM marts.model_experiments WHERE model = ?),
                primary_rows AS (
                    SELECT x.dt, x.experiment_id, any_value(x.decision) AS decision,
                           any_value(x.decision_reason) AS reason
                    FROM marts.experiment_readouts AS x JOIN seen USING (experiment_id)
                    WHERE x.metric_role = 'primary' AND x.dt <= ?
                    GROUP BY x.dt, x.experiment_id
                ),
                changes AS (
                    SELECT *, lag(decision) OVER (PARTITION BY experiment_id ORDER BY dt) AS before FROM primary_rows
                )
                SELECT dt, experiment_id, decision, reason
                FROM changes WHERE before IS DISTINCT FROM decision ORDER BY dt DESC, experiment_id""",
                [model, day]), "no experiment ran on this model", links={1: 4}),
            Section("Known issues (open anomalies)", ["kind", "feature", "metric", "value", "baseline", "severity"],
                    _rows(con, """SELECT kind, feature, metric, value, baseline, severity FROM marts.anomalies
                                  WHERE dt = ? AND model = ? ORDER BY severity = 'critical' DESC, kind, metric""",
                          [day, model]), "none"),
        ]
        # experiment ids are data: the link uses the report page's own safe file name
        log = sections[5]
        log.rows = [(*r, f"../experiments/{safe_slug(r[1])}.md") for r in log.rows]
        stem = safe_slug(model)
        for suffix, text in ((".md", _markdown(model, header, sections)), (".html", _html(model, header, sections))):
            path = folder / f"{stem}{suffix}"
            path.write_text(text)
            paths.append(path)
        index.append((model, score, failing, f"{stem}.html"))
    page = ["# Model cards", "", f"as of {day}", "", "| model | score | failing |", "|---|---|---|"]
    page += [f"| [{md_text(m)}]({link.replace('.html', '.md')}) | {'' if s is None else f'{s:.0f}'} | "
             f"{md_text(f or '')} |" for m, s, f, link in index]
    (folder / "_index.md").write_text("\n".join(page) + "\n")
    paths.append(folder / "_index.md")
    return paths
