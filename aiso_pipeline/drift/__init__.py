"""Data drift per day, model and column, with Evidently 0.7.23's default tests computed inside DuckDB.

    from aiso_pipeline.drift import DriftConfig, compute_drift, sample_for_report
    metrics_rows, summary_rows = compute_drift(con, dt, DriftConfig(), source="raw.inference_events")
"""
from aiso_pipeline.drift.config import DriftConfig
from aiso_pipeline.drift.engine import METRIC_COLUMNS, SUMMARY_COLUMNS, compute_drift, sample_for_report

__all__ = ["DriftConfig", "compute_drift", "sample_for_report", "METRIC_COLUMNS", "SUMMARY_COLUMNS"]
