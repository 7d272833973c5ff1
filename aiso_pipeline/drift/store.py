"""Write one day's drift results (idempotently) and the Evidently HTML reports that go with them."""
from __future__ import annotations

import datetime as _dt
from pathlib import Path

import duckdb
import pandas as pd

from aiso_pipeline import warehouse
from aiso_pipeline.drift.config import DriftConfig
from aiso_pipeline.drift.engine import METRIC_COLUMNS, SUMMARY_COLUMNS, sample_for_report


def write_drift(con: duckdb.DuckDBPyConnection, dt: str, metrics: list[dict], summary: list[dict]) -> None:
    """Replace partition `dt` of marts.drift_metrics and marts.drift_summary in one transaction."""
    m = pd.DataFrame(metrics, columns=list(METRIC_COLUMNS))
    s = pd.DataFrame(summary, columns=[*SUMMARY_COLUMNS, "report_path"])
    con.register("_drift_metrics", m)
    con.register("_drift_summary", s)
    try:
        with warehouse.transaction(con):
            warehouse.run(con, "drift/sql/store.sql", dt=dt)
    finally:
        con.unregister("_drift_metrics")
        con.unregister("_drift_summary")


def html_report(con: duckdb.DuckDBPyConnection, dt: str, model: str, config: DriftConfig, folder: Path,
                max_rows: int) -> Path | None:
    """Evidently's DataDriftPreset on a bounded sample of (reference, current): a picture for humans. The
    numbers of record are the full-data ones in marts.drift_metrics."""
    from evidently import DataDefinition, Dataset, Report  # ~4 s to import: only when a report is built
    from evidently.presets import DataDriftPreset

    reference, current = sample_for_report(con, _dt.date.fromisoformat(dt), model, config, max_rows=max_rows)
    if not reference.attrs["numerical_columns"] and not reference.attrs["categorical_columns"]:
        return None  # no column has values on both sides: nothing for Evidently to compare
    definition = DataDefinition(numerical_columns=reference.attrs["numerical_columns"],
                                categorical_columns=reference.attrs["categorical_columns"])
    snapshot = Report([DataDriftPreset()]).run(Dataset.from_pandas(current, data_definition=definition),
                                               Dataset.from_pandas(reference, data_definition=definition))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{''.join(ch if ch.isalnum() or ch in '-._' else '_' for ch in model)}.html"
    snapshot.save_html(str(path))
    return path
