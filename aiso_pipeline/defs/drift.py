"""Drift assets: marts.drift_metrics and marts.drift_summary per day and model, with Evidently HTML reports."""
import datetime as _dt
from typing import Optional

import dagster as dg

from aiso_pipeline.defs.metadata import RawMarkdown, markdown_table, table_metadata
from aiso_pipeline.defs.resources import DAILY, OWNERS, POOL, WarehouseResource
from aiso_pipeline.drift import DriftConfig
from aiso_pipeline.monitoring.config import load as monitoring_settings


class DriftAssetConfig(dg.Config):
    reference_days: int = 7
    reference_start: Optional[str] = None  # YYYY-MM-DD: a pinned reference window overrides reference_days
    reference_end: Optional[str] = None
    wasserstein_threshold: float = 0.1
    jensenshannon_threshold: float = 0.1
    ks_threshold: float = 0.05
    chisquare_threshold: float = 0.05
    z_threshold: float = 0.05
    dataset_drift_share: float = 0.5
    html_reports: bool = True  # False: no Evidently page whatever reference/monitoring.yaml's drift_reports says
    report_sample_rows: int = 5000  # per side: Evidently runs on a sample so the report stays fast


def pages_due(metrics: list[dict], summary: list[dict], policy: str, alpha: float) -> set[str]:
    """The models whose Evidently page is rendered tonight (monitoring.yaml's drift_reports): with a reference
    window, and for `significant` a drifted column whose shift is significant at `alpha`, as the drift alert asks."""
    models = {r["model"] for r in summary if r["reference_rows"]}
    if policy == "never":
        return set()
    if policy == "always":
        return models
    shifted = {r["model"] for r in metrics
               if r["drifted"] and r.get("shift_p_value") is not None and r["shift_p_value"] < alpha}
    return models & shifted


@dg.multi_asset(
    specs=[
        dg.AssetSpec(["marts", "drift_metrics"], deps=[["raw", "inference_events"]], group_name="drift",
                     kinds={"duckdb", "python"}, owners=OWNERS,
                     description="Per day, model and column: the day against its reference window (default the 7 "
                                 "days before) with Evidently's default test for the column (normed Wasserstein, "
                                 "Jensen-Shannon, KS, chi-square or z), computed in DuckDB."),
        dg.AssetSpec(["marts", "drift_summary"], deps=[["marts", "drift_metrics"]], group_name="drift",
                     kinds={"duckdb"}, owners=OWNERS,
                     description="Per day and model: columns checked and drifted, share drifted, and dataset "
                                 "drift (share >= 0.5), with a link to the Evidently HTML report."),
    ],
    partitions_def=DAILY,
    pool=POOL,
)
def drift(context: dg.AssetExecutionContext, config: DriftAssetConfig, warehouse: WarehouseResource):
    dt = context.partition_key
    from aiso_pipeline.drift import compute_drift
    from aiso_pipeline.drift.store import html_report, write_drift

    cfg = DriftConfig(
        reference_days=config.reference_days,
        reference_start=_dt.date.fromisoformat(config.reference_start) if config.reference_start else None,
        reference_end=_dt.date.fromisoformat(config.reference_end) if config.reference_end else None,
        wasserstein_threshold=config.wasserstein_threshold, jensenshannon_threshold=config.jensenshannon_threshold,
        ks_threshold=config.ks_threshold, chisquare_threshold=config.chisquare_threshold,
        z_threshold=config.z_threshold, dataset_drift_share=config.dataset_drift_share)
    reports = warehouse.data().reports / "drift" / f"dt={dt}"
    settings = monitoring_settings(warehouse.data())
    with warehouse.connect() as con:
        metrics, summary = compute_drift(con, _dt.date.fromisoformat(dt), cfg)
        due = pages_due(metrics, summary, settings.drift_reports if config.html_reports else "never",
                        settings.drift_alert_alpha)
        for row in summary:
            if row["model"] in due:
                path = html_report(con, dt, row["model"], cfg, reports, config.report_sample_rows,
                                   rows=(row["reference_rows"], row["current_rows"]))
                row["report_path"] = str(path) if path else None
        write_drift(con, dt, metrics, summary)
        metrics_meta = table_metadata(con, "marts.drift_metrics", dt)
        summary_meta = table_metadata(con, "marts.drift_summary", dt)
    drifted = [r for r in summary if r["dataset_drift"]]
    if drifted:
        context.log.warning(f"dataset drift on {dt}: {', '.join(r['model'] for r in drifted)}")
    table = markdown_table(
        ["model", "checked", "drifted", "share", "dataset drift", "report"],
        [(r["model"], r["columns_checked"], r["columns_drifted"], r["share_drifted"], r["dataset_drift"],
          RawMarkdown(f"[html](file://{r['report_path']})") if r.get("report_path") else "") for r in summary])
    drifted_columns = markdown_table(
        ["model", "column", "method", "statistic", "threshold"],
        [(r["model"], r["column_name"], r["method"], r["statistic"], r["threshold"]) for r in metrics if r["drifted"]])
    yield dg.MaterializeResult(asset_key=["marts", "drift_metrics"], metadata={
        **metrics_meta, "drifted_columns": dg.MetadataValue.md(drifted_columns)})
    yield dg.MaterializeResult(asset_key=["marts", "drift_summary"], metadata={
        **summary_meta, "models_with_dataset_drift": len(drifted), "summary": dg.MetadataValue.md(table),
        "reports": dg.MetadataValue.path(str(reports))})
