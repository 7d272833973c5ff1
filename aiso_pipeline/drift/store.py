"""Write one day's drift results (idempotently) and the Evidently HTML reports that go with them."""
from __future__ import annotations

import datetime as _dt
from pathlib import Path

import duckdb
import pandas as pd

from aiso_pipeline import warehouse
from aiso_pipeline.drift.config import DriftConfig
from aiso_pipeline.drift.engine import METRIC_COLUMNS, SUMMARY_COLUMNS, sample_for_report
from aiso_pipeline.text import safe_slug


def write_drift(con: duckdb.DuckDBPyConnection, dt: str, metrics: list[dict], summary: list[dict]) -> None:
    """Replace partition `dt` of marts.drift_metrics and marts.drift_summary in one transaction."""
    m = pd.DataFrame(metrics, columns=list(METRIC_COLUMNS))
    s = pd.DataFrame(summary, columns=[*SUMMARY_COLUMNS, "report_path"])
    con.register("_drift_metrics", m)
    con.register("_drift_summary", s)
    try:
        with warehouse.transaction(con, writes=[("marts.drift_metrics", dt), ("marts.drift_summary", dt)]):
            warehouse.run(con, "drift/sql/store.sql", dt=dt)
    finally:
        con.unregister("_drift_metrics")
        con.unregister("_drift_summary")


def html_report(con: duckdb.DuckDBPyConnection, dt: str, model: str, config: DriftConfig, folder: Path,
                max_rows: int, rows: tuple[int, int] | None = None) -> Path | None:
    """Evidently's DataDriftPreset on a bounded sample of (reference, current): a picture for humans. The
    numbers of record are the full-data ones in marts.drift_metrics. rows: the model's (reference, current) row
    counts, to read only a share of them (sample_for_report)."""
    from evidently import DataDefinition, Dataset, Report  # ~4 s to import: only when a report is built
    from evidently.presets import DataDriftPreset

    reference, current = sample_for_report(con, _dt.date.fromisoformat(dt), model, config, max_rows=max_rows,
                                           rows=rows)
    if not reference.attrs["numerical_columns"] and not reference.attrs["categorical_columns"]:
        return None  # no column has values on both sides: nothing for Evidently to compare
    reference, current = _html_safe(reference), _html_safe(current)
    definition = DataDefinition(numerical_columns=reference.attrs["numerical_columns"],
                                categorical_columns=reference.attrs["categorical_columns"])
    snapshot = Report([DataDriftPreset()]).run(Dataset.from_pandas(current, data_definition=definition),
                                               Dataset.from_pandas(reference, data_definition=definition))
    folder.mkdir(parents=True, exist_ok=True)
    # model names come from landing files: a stable slug with a hash keeps 'a/b' and 'a b' apart and a 10k-char
    # name under the 255-byte file-name limit (a plain isalnum() filter kept both, and so failed the asset)
    path = folder / f"{safe_slug(model)}.html"
    snapshot.save_html(str(path))
    return path


def _angle_free(text: str) -> str:
    return text.replace("<", "\u2039").replace(">", "\u203a")  # ‹ › look alike and are not markup


def _html_safe(df: pd.DataFrame) -> pd.DataFrame:
    """The sample with `<` and `>` replaced in column names (features.<key>) and categorical values.

    Evidently writes its data as JSON inside a <script> element without escaping `</`, so a category
    `</script><script>alert(1)</script>` from a landing file would end that element and run as script when the
    report is opened (and Plotly reads tags in labels). The report is a picture; marts.drift_metrics keeps the
    real names. Deterministic, so reference and current keep matching columns and categories."""
    names, seen = {}, set()
    for c in df.columns:
        name = base = _angle_free(c)
        n = 2
        while name in seen:  # '<a>' and '‹a›' stay two columns
            name, n = f"{base} ({n})", n + 1
        seen.add(name)
        names[c] = name
    out = df.rename(columns=names)
    for c in out.columns:
        if out[c].dtype == object:
            out[c] = out[c].map(lambda v: _angle_free(v) if isinstance(v, str) else v)
    out.attrs = {key: [names[c] for c in df.attrs[key]] for key in ("numerical_columns", "categorical_columns")}
    return out
