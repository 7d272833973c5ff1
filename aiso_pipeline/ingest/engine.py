"""Ingest one landing partition (stream × day) into DuckDB: stage and parse file by file, find duplicates, then
replace the partition.

Reading happens outside the write transaction (a file that fails to read must not abort the others); the
partition's rows, quarantine and ingest log are then replaced in one transaction, so a rerun is idempotent
and a crash leaves the previous state.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import duckdb

from aiso_pipeline import warehouse
from aiso_pipeline.config import DataDir
from aiso_pipeline.ingest import render, sources
from aiso_pipeline.ingest.landing import container, partition_files, preview
from aiso_pipeline.ingest.prices import load_model_candidates, load_prices
from aiso_pipeline.ingest.settings import load_settings
from aiso_pipeline.ingest.stage import (NotData, drop_segments, has_columns, json_lines, stage, typed_lines,
                                        typed_payloads)

TEMP_TABLES = ("_staged", "_staged_cols", "_staged_json", "_files", "_parsed", "_batch_keys", "_seen", "_duplicates",
               "_loaded", "_price_intervals", "_prices", "_inherited", "_model_candidates", "_staged_rejects",
               "_segment_rejects", "_reject_errors", "_reject_scans")


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
    rows_skipped: int
    rows_unpriced: int
    quarantine_reasons: dict[str, int]
    file_problems: dict[str, str]  # source_file -> why it was quarantined whole
    sources: dict[str, str]  # source_file -> the declaration it was read as (ingest/sources/)


def ingest_partition(con: duckdb.DuckDBPyConnection, data: DataDir, stream: str, dt: str) -> IngestSummary:
    files = partition_files(data, stream, dt)
    settings = load_settings(data)
    if stream == "inference":
        load_prices(con, data)
    warehouse.run(con, "ingest/sql/prelude.sql")
    for statement in warehouse.statements(render.render_stream(stream)):  # the recognizer, the loaded keys
        con.execute(statement)
    created = set()

    def parser(source: sources.Source, columns: bool = False) -> str:  # a source's macro, made when first needed
        if (source.name, columns) not in created:
            con.execute(render.render_source(source.name, columns))
            created.add((source.name, columns))
        return render.macro_name(source, columns)

    con.execute(f"CREATE OR REPLACE TEMP TABLE _parsed AS FROM {parser(sources.fallback(stream))}(NULL, NULL) LIMIT 0")
    # One file at a time: its records are staged (_staged, numbered by the view _lines), its source recognized from
    # its first records, then parsed into _parsed, so only one file's text is held. A file that fails to read
    # (truncated gzip, corrupt Parquet, invalid UTF-8 further in) stages nothing.
    file_errors, formats, read_as = {}, {}, {}
    for f in files:
        c = container(f, stream)
        formats[f.source_file] = c.label if c.format else None
        problem = c.problem
        if problem is None:
            try:
                stage(con, f, c, stream, data.work_db.parent / "staging")
                if c.compression != "none":
                    bomb(con, f, settings.max_compression_ratio)
                source = recognize(con, stream)
                read_as[f.source_file] = source.name
                # a columnar file whose source reads flat names: parsed from its columns (render.TypedRecords)
                columns = has_columns(c) and typed_lines(con, source, c)
                if has_columns(c) and not columns:
                    json_lines(con)
                (rows,) = con.execute(f"INSERT INTO _parsed FROM {parser(source, columns)}(?, ?)",
                                      [f.source_file, settings.naive_timezone]).fetchone()
                if columns:
                    typed_payloads(con, f.source_file)
                # lines the reader could not read (bad bytes, over the size, ragged CSV rows): each its own row
                (rejected,) = con.execute("""INSERT INTO _parsed BY NAME
                                             SELECT ?::VARCHAR AS source_file, line_number, 1 AS record_number,
                                                    reason, payload FROM _staged_rejects""",
                                          [f.source_file]).fetchone()
                rows += rejected
                problem = None if rows else "empty_file"
            except NotData as e:
                problem = str(e)
            except duckdb.Error as e:  # the reader's own words, naming the file as the tables do
                problem = f"unreadable_file: {str(e).splitlines()[0].replace(str(f.path), f.source_file)}"
        if problem:
            file_errors[f.source_file] = problem
        for view in ("_typed_lines", "_lines", "_cells"):  # the file's cells and text: not needed past its parse
            con.execute(f"DROP VIEW IF EXISTS {view}")
        for table in ("_staged_cols", "_staged_json"):
            con.execute(f"DROP TABLE IF EXISTS {table}")
    con.execute("DROP VIEW IF EXISTS _lines")
    con.execute("DROP TABLE IF EXISTS _staged")  # the last file's text: not needed past the parse
    drop_segments(con)
    for statement in warehouse.statements(render.render_finish(stream)):
        con.execute(statement)
    con.execute("""CREATE OR REPLACE TEMP TABLE _files (source_file VARCHAR, file_format VARCHAR, source VARCHAR,
                   file_bytes BIGINT, file_mtime TIMESTAMPTZ, file_error VARCHAR, error_payload VARCHAR)""")
    if files:
        con.executemany("INSERT INTO _files VALUES (?, ?, ?, ?, ?, ?, ?)", [
            (f.source_file, formats[f.source_file], read_as.get(f.source_file), f.bytes, f.mtime,
             file_errors.get(f.source_file), preview(f) if f.source_file in file_errors and not f.problem else None)
            for f in files])

    warehouse.run(con, "ingest/sql/dedup.sql", dt=dt)
    if stream == "inference":
        load_model_candidates(con)
        warehouse.run(con, "ingest/sql/prices.sql")
    with warehouse.transaction(con, writes=[(f"raw.{stream}_events", dt), ("quality.quarantine", dt),
                                            ("quality.ingest_log", dt)]):
        warehouse.run(con, f"ingest/sql/{stream}_write.sql", dt=dt)
        warehouse.run(con, "ingest/sql/quality_write.sql", dt=dt, stream=stream,
                      max_rows=settings.max_quarantined_rows_per_file)
    summary = _summarize(con, stream, dt, len(files), file_errors, read_as)
    con.execute("DROP VIEW IF EXISTS _history")
    for table in TEMP_TABLES:
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return summary


def bomb(con: duckdb.DuckDBPyConnection, f, max_ratio: float) -> None:
    """A compressed file whose staged text is more than `max_ratio` times its size is a compression bomb:
    quarantined whole before its (many) lines are parsed."""
    (expanded,) = con.execute("SELECT coalesce(sum(length(payload) + 1), 0) FROM _lines").fetchone()
    if expanded > max_ratio * max(f.bytes, 1):
        raise NotData(f"compression_bomb: {f.bytes:,} bytes expand to {expanded:,} ({expanded / max(f.bytes, 1):,.0f}x, "
                      f"more than max_compression_ratio {max_ratio:g} in reference/ingest.yaml)")


def nothing_loaded(con: duckdb.DuckDBPyConnection, s: IngestSummary) -> str | None:
    """One line saying why a partition whose landing files exist loaded no row (CONTRACT section 4: the day fails
    loudly), naming each file and what became of its rows; None when something loaded or there are no files."""
    if not s.files or s.rows_loaded:
        return None
    parts = []
    for source_file, read, dup, quarantined, skipped, skips, error, reason in con.execute(
            """SELECT l.source_file, l.rows_read, l.rows_duplicate, l.rows_quarantined, l.rows_skipped,
                      l.skip_reasons, l.file_error,
                      (SELECT q.reason FROM quality.quarantine AS q
                       WHERE q.stream = l.stream AND q.dt = l.dt AND q.source_file = l.source_file
                         AND q.line_number IS NOT NULL
                       GROUP BY q.reason ORDER BY count(*) DESC, q.reason LIMIT 1)
               FROM quality.ingest_log AS l WHERE l.stream = ? AND l.dt = ? ORDER BY l.source_file""",
            [s.stream, s.dt]).fetchall():
        name = source_file.rsplit("/", 1)[-1]
        if error:
            why = error
        else:
            why = ", ".join(filter(None, [
                f"{quarantined} quarantined (mostly {reason})" if quarantined else "",
                f"{skipped} skipped ({', '.join(sorted(json.loads(skips)))})" if skipped else "",
                f"{dup} duplicate" if dup else ""])) or "no rows"
            why = f"{read} row(s) read: {why}"
        parts.append(f"{name}: {why}")
    return (f"no {s.stream} row loaded for {s.dt} from {s.files} landing file(s) [{'; '.join(parts)}]: fix or "
            f"replace the files (see quality.quarantine and quality.ingest_log), then rerun the day")


def recognize(con: duckdb.DuckDBPyConnection, stream: str) -> sources.Source:
    """The source of the staged file: the declaration that matches most of its first records (the fallback, flat
    canonical source matches records with its required keys; ties go to the one declared first), else the
    stream's fallback."""
    counts = dict(con.execute(f"FROM _recognize_{stream}()").fetchall())
    candidates = [s for s in sources.for_stream(stream) if counts.get(s.name)]
    if not candidates:
        return sources.fallback(stream)
    return max(candidates, key=lambda s: counts[s.name])  # max keeps the first of equals: declaration order


def _summarize(con, stream: str, dt: str, n_files: int, file_errors: dict[str, str],
               read_as: dict[str, str]) -> IngestSummary:
    read, loaded, dup, quarantined, skipped, unpriced = con.execute(
        """SELECT coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded), 0), coalesce(sum(rows_duplicate), 0),
                  coalesce(sum(rows_quarantined), 0), coalesce(sum(rows_skipped), 0), coalesce(sum(rows_unpriced), 0)
           FROM quality.ingest_log WHERE stream = ? AND dt = ?""", [stream, dt]).fetchone()
    reasons = dict(con.execute(
        """SELECT reason, count(*) FROM quality.quarantine WHERE stream = ? AND dt = ?
           GROUP BY reason ORDER BY count(*) DESC, reason""", [stream, dt]).fetchall())
    return IngestSummary(stream, dt, n_files, len(file_errors), read, loaded, dup, quarantined, skipped, unpriced,
                         reasons, dict(file_errors), dict(read_as))
