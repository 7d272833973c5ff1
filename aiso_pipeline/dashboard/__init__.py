"""The analysts' dashboard: one self-contained HTML page (reports/dashboard/index.html) built from the published
warehouse.duckdb, opened read-only so it never blocks a run. Business KPIs next to model KPIs per model and feature
over time, the visibility scorecard, experiments with decisions and intervals, anomalies and drift, with filters
for date range, model and feature (also as URL parameters: ?from=YYYY-MM-DD&to=...&model=...&feature=...).

Why a static page: it works offline (no CDN, no server beyond `python -m http.server`-style serving), opens in any
browser, can be mailed or archived as is, and a headless browser tests exactly what analysts see. The data are
small daily marts (a few thousand rows), embedded as JSON; the page's script renders them with textContent only,
so no value from the data can become markup.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import math
from pathlib import Path

import duckdb

from aiso_pipeline.text import safe_slug

HERE = Path(__file__).resolve().parent
log = logging.getLogger(__name__)

QUERIES = {
    # per day x model x feature: business and model KPIs, with the priced denominators the page re-aggregates
    "daily": """
        SELECT c.dt, c.model, c.feature, c.requests, c.cost_usd, c.successes, c.conversions, c.revenue,
               c.cost_usd / nullif(c.cost_per_success, 0) AS priced_successes,
               c.cost_usd / nullif(c.cost_per_conversion, 0) AS priced_conversions,
               c.error_rate * c.requests AS errors, c.latency_p95_ms,
               o.inferences, o.joined, c.window_closed
        FROM marts.cost_daily AS c
        LEFT JOIN marts.outcome_coverage AS o
               ON o.dt = c.dt AND o.model = c.model AND o.feature IS NOT DISTINCT FROM c.feature
        ORDER BY c.dt, c.model, c.feature""",
    "scorecard": """
        SELECT dt, model, visibility_score, failing, join_rate, join_rate_status, feature_join_rate,
               feature_join_rate_status, worst_join_feature, ece, ece_status, error_rate,
               error_rate_status, experiment_power, experiment_power_status, drift_detect_hours,
               drift_detect_hours_status, worst_slice_gap, worst_slice_gap_status, open_anomalies,
               open_anomalies_status, cost_per_success, cost_per_conversion
        FROM marts.scorecard ORDER BY dt, model""",
    "checks": """
        SELECT dt, model, check_name, status, reason FROM marts.scorecard_checks
        WHERE status IN ('fail', 'warn') ORDER BY dt, model, check_name""",
    "experiments": """
        SELECT dt, experiment_id, metric, variant, metric_role, decision, decision_reason, rel_lift, ci_low,
               ci_high, p_value_adjusted, units, control_units
        FROM marts.experiment_readouts
        WHERE metric_role = 'primary' OR metric = 'cost_per_converted_user'
        ORDER BY dt, experiment_id, metric, variant""",
    "anomalies": """
        SELECT dt, kind, model, feature, metric, value, baseline, severity FROM marts.anomalies
        ORDER BY dt, severity = 'critical' DESC, model, metric""",
    "drift": """
        SELECT dt, model, columns_checked, columns_drifted, share_drifted, dataset_drift FROM marts.drift_summary
        ORDER BY dt, model""",
}


def _value(v):
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()[:10]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def collect(warehouse: Path) -> dict:
    """The dashboard's data from the published warehouse (read-only); tables not built yet are empty."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        present = {f"{s}.{t}" for s, t in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables").fetchall()}
        needs = {"daily": "marts.cost_daily", "scorecard": "marts.scorecard", "checks": "marts.scorecard_checks",
                 "experiments": "marts.experiment_readouts", "anomalies": "marts.anomalies",
                 "drift": "marts.drift_summary"}
        out = {}
        for name, sql in QUERIES.items():
            if needs[name] not in present or (name == "daily" and "marts.outcome_coverage" not in present):
                out[name] = {"columns": [], "rows": []}
                continue
            cur = con.execute(sql)
            columns = [d[0] for d in cur.description]
            data = [[_value(v) for v in row] for row in cur.fetchall()]
            if name == "scorecard":  # each model's card, by the file name cards.py gives it
                columns.append("card")
                data = [[*r, f"../model_cards/{safe_slug(r[1])}.html"] for r in data]
            out[name] = {"columns": columns, "rows": data}
    finally:
        con.close()
    return out


def render(data: dict, built_at: str) -> str:
    payload = json.dumps({"built_at": built_at, **data}, separators=(",", ":"), allow_nan=False)
    # inside <script type="application/json">: no "</script>" or "<!--" can end or bend the element
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    template = (HERE / "page.html").read_text()
    return template.replace("__DATA__", payload)


def build(warehouse: Path, out_dir: Path) -> Path:
    """Write out_dir/index.html from the published warehouse; returns its path."""
    if not Path(warehouse).exists():
        from aiso_pipeline.errors import AisoError
        raise AisoError(f"nothing published yet at {warehouse}: run `aiso demo` or `aiso run --date D` first")
    out_dir.mkdir(parents=True, exist_ok=True)
    page = out_dir / "index.html"
    tmp = out_dir / ".index.html.tmp"
    tmp.write_text(render(collect(warehouse), dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")))
    tmp.replace(page)
    return page


def refresh(data) -> Path | None:
    """Rebuild reports/dashboard/index.html after a publish, so the page on disk follows the warehouse. A page that
    cannot be built is logged and skipped: it never fails the run that published."""
    try:
        return build(data.warehouse, data.reports / "dashboard")
    except Exception as e:  # noqa: BLE001 (the page is a convenience; the run's data are already published)
        log.warning("the dashboard page was not rebuilt: %s", str(e).splitlines()[0] if str(e) else type(e).__name__)
        return None
