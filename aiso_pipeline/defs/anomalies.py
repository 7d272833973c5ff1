"""Monitoring asset: marts.anomalies for one day, judged against the trailing window of the daily marts."""
import dagster as dg

from aiso_pipeline import anomalies, monitoring
from aiso_pipeline.defs.metadata import markdown_table, table_metadata
from aiso_pipeline.defs.resources import DAILY, OWNERS, POOL, WarehouseResource

ANOMALIES = dg.AssetKey(["marts", "anomalies"])
UPSTREAM = [dg.AssetKey(["marts", "cost_daily"]), dg.AssetKey(["marts", "outcome_coverage"]),
            dg.AssetKey(["marts", "drift_summary"]), dg.AssetKey(["marts", "drift_metrics"]),
            dg.AssetKey(["marts", "calibration"]), dg.AssetKey(["marts", "slice_metrics"])]
DEFAULTS = anomalies.Thresholds()
# A replay of past nights (`aiso demo`) tags each run with the seconds from now to the moment its nightly would have
# started, so detected_at (and the drift detection delay) read as they would have on the schedule.
CLOCK_OFFSET_TAG = "aiso/clock_offset_seconds"


class AnomalySettings(dg.Config):
    """Thresholds of the robust z-score (|value − trailing median| / (1.4826 · MAD), floored)."""

    warn_z: float = DEFAULTS.warn_z
    critical_z: float = DEFAULTS.critical_z
    min_history_days: int = DEFAULTS.min_history_days
    window_days: int = DEFAULTS.window_days
    min_requests: float = DEFAULTS.min_requests
    drift_critical_share: float = DEFAULTS.drift_critical_share
    drift_critical_score: float = DEFAULTS.drift_critical_score
    drift_episode_days: int = DEFAULTS.drift_episode_days
    seasonality: str = DEFAULTS.seasonality  # 'weekly': compare with the same weekday of the last window_days weeks


@dg.asset(
    key=ANOMALIES,
    deps=UPSTREAM,
    description="One row per anomaly of the day (CONTRACT section 7), per model × feature: requests (drop or "
                "spike), cost_usd, cost_per_success, latency_p95_ms, error_rate, fallback_rate, join_rate and "
                "calibration error (ece) against a robust baseline — the median of the trailing 14 days and "
                "1.4826 × MAD, floored — with robust z ≥ 3.5 a warning and ≥ 6 critical (configurable, optionally "
                "same-weekday baselines for weekly cycles); per drifted column whose shift is significant for its "
                "sample sizes (grouped into episodes, with the detection delay) and dataset drift; slices worse "
                "than their model (parity). Outcome-based metrics are judged once the attribution window has "
                "closed. anomaly_id is stable across reruns; the anomaly_alerts sensor alerts each one once, drift "
                "once per model and day.",
    partitions_def=DAILY,
    group_name="monitoring",
    kinds={"duckdb", "sql"},
    owners=OWNERS,
    pool=POOL,
)
def marts_anomalies(context: dg.AssetExecutionContext, config: AnomalySettings,
                    warehouse: WarehouseResource) -> dg.MaterializeResult:
    thresholds = anomalies.Thresholds(**config.model_dump())
    dt = context.partition_key
    monitoring_config = monitoring.load(warehouse.data())
    clock_offset = float(context.run.tags.get(CLOCK_OFFSET_TAG, 0.0))
    with warehouse.connect() as con:
        s = anomalies.detect(con, dt, thresholds, monitoring_config, clock_offset_seconds=clock_offset)
        meta = table_metadata(con, "marts.anomalies", dt)
        found = con.execute(
            """SELECT severity, kind, model, feature, metric, value, baseline, z_score FROM marts.anomalies
               WHERE dt = ? ORDER BY severity = 'critical' DESC, abs(z_score) DESC NULLS LAST LIMIT 20""",
            [dt]).fetchall()
    if s.missing_sources:
        context.log.warning(f"not built yet, so not judged: {', '.join(s.missing_sources)}")
    return dg.MaterializeResult(metadata={
        **meta,
        "anomalies": s.anomalies,
        "critical": s.critical,
        "by_metric": dg.MetadataValue.json(s.by_metric),
        "missing_sources": ", ".join(s.missing_sources) or "none",
        "found": dg.MetadataValue.md(markdown_table(
            ["severity", "kind", "model", "feature", "metric", "value", "baseline", "z"], found)),
    })
