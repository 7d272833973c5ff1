"""Ingest one landing partition (stream × day) into DuckDB: stage and parse file by file, find duplicates, then
replace the partition.

Reading happens outside the write transaction (a file that fails to read must not abort the others); the
partition's rows, quarantine and ingest log are then replaced in one transaction, so a rerun is idempotent
and a crash leaves the previous state.
"""
from __future__ import annotations

from dataclasses import dataclass

import duckdb

from aiso_pipeline import warehouse
from aiso_pipeline.config import DataDir
from aiso_pipeline.ingest.landing import partition_files, preview, whole_file_problem
from aiso_pipeline.ingest.prices import load_prices

TEMP_TABLES = ("_staged", "_files", "_parsed", "_batch_keys", "_seen", "_duplicates", "_loaded", "_price_intervals",
               "_prices")


@dataclass(frozen=True)
class IngestSummary:
    stream: str
    dt: str
    files: int
    files_quarantined: int
    rows_read: int
    rows_loaded: int
    rows_duplicate: int
    rows_quarantined: int
    rows_unpriced: int
    quarantine_reasons: dict[str, int]


def ingest_partition(con: duckdb.DuckDBPyConnection, data: DataDir, stream: str, dt: str) -> IngestSummary:
    files = partition_files(data, stream, dt)
    if stream == "inference":
        load_prices(con, data)
    warehouse.run(con, "ingest/sql/objects.sql")
    warehouse.run(con, f"ingest/sql/{stream}_parse.sql")
    con.execute("CREATE OR REPLACE TEMP TABLE _parsed AS FROM _rows(NULL)")  # the columns, no rows yet
    # One file at a time: its lines are staged (_staged, numbered by the view _lines), then parsed into _parsed,
    # so only one file's text is held.
    # A file that fails to read (truncated gzip, corrupt Parquet, invalid UTF-8 further in) stages nothing.
    file_errors = {}
    for f in files:
        problem = whole_file_problem(f)
        if problem is None:
            try:
                warehouse.run(con, f"ingest/sql/stage_{f.format}.sql", path=str(f.path))
                (rows,) = con.execute("INSERT INTO _parsed FROM _rows(?)", [f.source_file]).fetchone()
                problem = None if rows else "empty_file"
            except duckdb.Error as e:
                problem = f"unreadable_file: {str(e).splitlines()[0]}"
        if problem:
            file_errors[f.source_file] = problem
    con.execute("DROP VIEW IF EXISTS _lines")
    con.execute("DROP TABLE IF EXISTS _staged")  # the last file's text: not needed past the parse
    con.execute("""CREATE OR REPLACE TEMP TABLE _files (source_file VARCHAR, file_format VARCHAR, file_bytes BIGINT,
                   file_mtime TIMESTAMPTZ, file_error VARCHAR, error_payload VARCHAR)""")
    if files:
        con.executemany("INSERT INTO _files VALUES (?, ?, ?, ?, ?, ?)", [
            (f.source_file, f.format, f.bytes, f.mtime, file_errors.get(f.source_file),
             preview(f) if f.source_file in file_errors else None) for f in files])

    warehouse.run(con, "ingest/sql/dedup.sql", dt=dt)
    if stream == "inference":
        warehouse.run(con, "ingest/sql/prices.sql")
    with warehouse.transaction(con, writes=[(f"raw.{stream}_events", dt), ("quality.quarantine", dt),
                                            ("quality.ingest_log", dt)]):
        warehouse.run(con, f"ingest/sql/{stream}_write.sql", dt=dt)
        warehouse.run(con, "ingest/sql/quality_write.sql", dt=dt, stream=stream)
    summary = _summarize(con, stream, dt, len(files), len(file_errors))
    con.execute("DROP VIEW IF EXISTS _history")
    for table in TEMP_TABLES:
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return summary


def _summarize(con, stream: str, dt: str, n_files: int, n_bad_files: int) -> IngestSummary:
    read, loaded, dup, quarantined, unpriced = con.execute(
        """SELECT coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded), 0), coalesce(sum(rows_duplicate), 0),
                  coalesce(sum(rows_quarantined), 0), coalesce(sum(rows_unpriced), 0)
           FROM quality.ingest_log WHERE stream = ? AND dt = ?""", [stream, dt]).fetchone()
    reasons = dict(con.execute(
        """SELECT reason, count(*) FROM quality.quarantine WHERE stream = ? AND dt = ?
           GROUP BY reason ORDER BY count(*) DESC, reason""", [stream, dt]).fetchall())
    return IngestSummary(stream, dt, n_files, n_bad_files, read, loaded, dup, quarantined, unpriced, reasons)
