"""Monitoring marts per day (CONTRACT section 7): calibration of confidence against real outcomes (with its
reliability curve), the confidence-threshold curve, and slice parity.

All of it from sufficient statistics in SQL over the day's calls (marts.joined_outcomes joined to the day's
raw.inference_events for confidence and the declared slice inputs), so the cost grows with the day's data.
Python only runs the slice tests (one-sided, against a margin, Benjamini-Hochberg over the day's slices) on the
small per-slice table. Recomputed, like marts.cost_daily, while the day's attribution window is open. The
Dagster wiring is aiso_pipeline/defs/monitoring.py; settings are monitoring/config.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb

from aiso_pipeline import warehouse
from aiso_pipeline.monitoring.config import MonitoringConfig, load  # noqa: F401  (re-exported)

if TYPE_CHECKING:  # numpy, pandas and scipy load when a day is built, not when the code location loads
    import pandas as pd

SQL = "monitoring/sql"
TABLES = ("marts.calibration", "marts.calibration_bins", "marts.threshold_curve", "marts.slice_metrics")
TEMP_TABLES = ("_mon_agg", "_mon_buckets", "_mon_slice_all", "_mon_slice_stats", "_mon_slice_latency",
               "_mon_slices_out")
SLICE_COLUMNS = ("dt", "model", "feature", "slice_key", "slice_value", "requests", "calls", "success_rate",
                 "conversion_rate", "cost_per_success", "latency_p95_ms", "model_success_rate", "gap_vs_model",
                 "rest_success_rate", "p_value", "p_value_adjusted", "tested", "worse", "margin", "window_closed")


@dataclass(frozen=True)
class MonitoringSummary:
    dt: str
    calibrated: int  # model x feature rows in marts.calibration
    curve_rows: int
    slices: int
    tested: int
    worse: int
    values_dropped: int  # slice values beyond slice_max_values per model x feature x key


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    warehouse.run(con, f"{SQL}/schema.sql")


def _slots(config: MonitoringConfig) -> tuple[dict[str, str], dict]:
    """agg.sql's slots for the declared slices (columns s0, s1, ...), and their parameters. Feature keys are read
    with one JSON parse per call (a list of paths)."""
    params: dict = {}
    columns, sets, key_case, value_case, paths = [], [], [], [], []
    for i, (key, source) in enumerate(config.slice_sources()):
        params[f"slice_key_{i}"] = key
        if source.startswith("$."):
            paths.append(source)
            columns.append(f",\n           left(fv[{len(paths)}], 200) AS s{i}")
        else:
            columns.append(f",\n           r.{source}::VARCHAR AS s{i}")
        sets.append(f", (model, feature, s{i}, latency_ms)")
        key_case.append(f"WHEN grouping(s{i}) = 0 THEN $slice_key_{i}")
        value_case.append(f"WHEN grouping(s{i}) = 0 THEN s{i}")
    if paths:  # DuckDB: json_extract_string with a list of paths parses the document once
        params["slice_paths"] = paths
        columns.insert(0, ",\n           json_extract_string(r.features, $slice_paths) AS fv")
    if not key_case:  # nothing to slice by: no slice rows
        key_case, value_case = ["WHEN false THEN NULL"], ["WHEN false THEN NULL"]
    slots = {"slice_columns": "".join(columns), "sets": "".join(sets),
             "key_case": f"CASE {' '.join(key_case)} END", "value_case": f"CASE {' '.join(value_case)} END"}
    return slots, params


def slice_tests(stats: pd.DataFrame, margin: float, alpha: float, min_requests: float) -> pd.DataFrame:
    """Per slice: is its success rate below the rest of its model x feature by more than `margin`?

    Weighted proportions (weight = 1 / sample_rate) with Kish's effective size: var = p(1 - p) sum(w^2) / sum(w)^2,
    p taken as (successes + 0.5) / (requests + 1) so a slice at 0% or 100% still has a variance. One-sided z test
    of H0: p_slice - p_rest >= -margin; p-values adjusted by Benjamini-Hochberg over every tested slice of the
    day. Tested only when the slice and the rest both have `min_requests` weighted requests.
    """
    import numpy as np
    import pandas as pd
    from scipy import stats as sps

    from aiso_pipeline.stats import adjust_p_values

    totals = stats[stats.slice_key.isna()].set_index(["model", "feature_key"])
    out = stats[stats.slice_key.notna()].copy()
    t = totals.reindex(pd.MultiIndex.from_frame(out[["model", "feature_key"]]))
    w, s, w2 = out.requests.to_numpy(float), out.successes.to_numpy(float), out.weight_sq.to_numpy(float)
    tw, ts, tw2 = (t.requests.to_numpy(float), t.successes.to_numpy(float), t.weight_sq.to_numpy(float))
    rw, rs, rw2 = tw - w, ts - s, np.maximum(tw2 - w2, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_slice, p_model = s / w, ts / tw
        p_rest = np.where(rw > 0, rs / rw, np.nan)
        pv_s, pv_r = (s + 0.5) / (w + 1), (rs + 0.5) / (rw + 1)
        var = pv_s * (1 - pv_s) * w2 / w**2 + pv_r * (1 - pv_r) * rw2 / rw**2
        z = (p_slice - p_rest + margin) / np.sqrt(var)
    tested = (w >= min_requests) & (rw >= min_requests) & np.isfinite(z)
    p = np.where(tested, sps.norm.cdf(z), np.nan)
    adjusted = np.full(len(out), np.nan)
    if tested.any():
        adjusted[tested] = adjust_p_values(p[tested].tolist(), "bh")
    out["success_rate"] = p_slice
    out["model_success_rate"] = p_model
    out["gap_vs_model"] = p_slice - p_model
    out["rest_success_rate"] = p_rest
    out["p_value"] = p
    out["p_value_adjusted"] = adjusted
    out["tested"] = tested
    out["worse"] = tested & (adjusted < alpha)
    out["margin"] = margin
    return out


def build(con: duckdb.DuckDBPyConnection, dt: str, config: MonitoringConfig = MonitoringConfig()) -> MonitoringSummary:
    """Replace partition `dt` of the monitoring marts (one transaction): idempotent."""
    import numpy as np
    import pandas as pd

    ensure_tables(con)
    slots, params = _slots(config)
    try:
        warehouse.run_sql(con, warehouse.fill(f"{SQL}/agg.sql", **slots), dt=dt, **params)
        warehouse.run(con, f"{SQL}/slices.sql", max_values=config.slice_max_values)
        stats = con.execute(
            """SELECT s.*, coalesce(s.feature, chr(0)) AS feature_key, l.latency_p95_ms
               FROM _mon_slice_stats AS s
               LEFT JOIN _mon_slice_latency AS l ON l.model = s.model AND l.feature IS NOT DISTINCT FROM s.feature
                    AND l.slice_key = s.slice_key AND l.slice_value = s.slice_value""").df()
        (dropped,) = con.execute("""SELECT (SELECT count(*) FROM _mon_slice_all WHERE slice_key IS NOT NULL)
                                           - (SELECT count(*) FROM _mon_slice_stats WHERE slice_key IS NOT NULL)""").fetchall()[0]
        out = slice_tests(stats, config.slice_margin, config.slice_alpha, config.slice_min_requests)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["conversion_rate"] = out.conversions / out.requests
            out["cost_per_success"] = out.cost / out.priced_successes
        out["dt"] = pd.Timestamp(dt).date()
        frame = out.reindex(columns=list(SLICE_COLUMNS)).replace([np.inf, -np.inf], np.nan)
        frame = frame.astype({"tested": bool, "worse": bool, "window_closed": bool})
        con.register("_mon_slices_df", frame)
        con.execute("CREATE OR REPLACE TEMP TABLE _mon_slices_out AS SELECT * FROM _mon_slices_df")
        con.unregister("_mon_slices_df")
        with warehouse.transaction(con, writes=[(t, dt) for t in TABLES]):
            warehouse.run(con, f"{SQL}/calibration.sql", dt=dt)
            warehouse.run(con, f"{SQL}/threshold_curve.sql", dt=dt)
            con.execute("DELETE FROM marts.slice_metrics WHERE dt = ?", [dt])
            con.execute("INSERT INTO marts.slice_metrics BY NAME "
                        "SELECT *, current_timestamp AS computed_at FROM _mon_slices_out")
        (calibrated,) = con.execute("SELECT count(*) FROM marts.calibration WHERE dt = ?", [dt]).fetchall()[0]
        (curve,) = con.execute("SELECT count(*) FROM marts.threshold_curve WHERE dt = ?", [dt]).fetchall()[0]
    finally:
        for table in TEMP_TABLES:
            con.execute(f"DROP TABLE IF EXISTS {table}")
    return MonitoringSummary(dt, int(calibrated), int(curve), len(frame), int(frame.tested.sum()),
                             int(frame.worse.sum()), int(dropped))
