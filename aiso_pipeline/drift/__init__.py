"""Data drift per day, model and column, with Evidently 0.7.23's default tests computed inside DuckDB.

    from aiso_pipeline.drift import DriftConfig, compute_drift, sample_for_report
    metrics_rows, summary_rows = compute_drift(con, dt, DriftConfig(), source="raw.inference_events")

The engine (numpy, pandas, scipy) loads on first use, so reading drift settings does not pull them in.
"""
import importlib

from aiso_pipeline.drift.config import DriftConfig

__all__ = ["DriftConfig", "compute_drift", "sample_for_report", "METRIC_COLUMNS", "SUMMARY_COLUMNS"]


def __getattr__(name: str):
    if name in __all__:
        value = getattr(importlib.import_module("aiso_pipeline.drift.engine"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aiso_pipeline.drift' has no attribute {name!r}")
