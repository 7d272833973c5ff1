"""Publishing warehouse.duckdb for analysts: atomically, at a cost that follows what the runs changed, not how much
history there is.

The big day-partitioned tables (LAKE_TABLES: the raw events, the joined outcomes, the quarantine) are published as
Parquet, one file per table and day under .work/lake/. A publish writes only the partitions that meta.partition_writes
lists since the previous publish, plus any whose row count no longer matches what was published (a safety net for
writes that bypass warehouse.transaction). The other tables are small and copied whole. warehouse.duckdb is then
rebuilt beside the old one and renamed over it: the small tables, and for each lake table a view over its current
files, cast back to the working database's column types. An analyst's open connection keeps the catalog it opened
and the files that catalog names: a replaced file is deleted only after KEEP_PUBLICATIONS more publishes.
Spark, or any Parquet reader, can read the same files (they carry their `dt` column).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from aiso_pipeline.config import DataDir, literal
from aiso_pipeline.errors import AisoError
from aiso_pipeline.warehouse import _open_writer, duckdb_config, run, transaction

LAKE_TABLES = ("raw.inference_events", "raw.product_events", "marts.joined_outcomes", "quality.quarantine")
# A lake table's per-day flag kept current by a small table, so changing it rewrites no Parquet file: the published
# view reads the flag from there (falling back to the file's own value for a day it does not list).
DAY_FLAGS = {"marts.joined_outcomes": ("window_closed", "marts.outcome_windows")}
KEEP_PUBLICATIONS = 2  # a replaced Parquet file outlives this many later publishes (readers of older catalogs)
CATALOG = "catalog"  # the name the new warehouse.duckdb is attached under while it is built (published.sql)


@dataclass(frozen=True)
class Publication:
    """What publish() did. Path-like: it stands for the published warehouse.duckdb."""
    path: Path
    number: int          # publications of this data directory so far
    partitions: tuple[tuple[str, date], ...]  # (table, dt) written to Parquet by this publish
    rows: int            # rows written to Parquet
    bytes_written: int   # Parquet bytes written
    seconds: float
    detail: str = ""     # why every partition was written, when it was

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def summary(self) -> str:
        why = f" ({self.detail})" if self.detail else ""
        return (f"publication {self.number}: {len(self.partitions)} partition(s), {self.rows:,} rows, "
                f"{self.bytes_written / 1e6:,.1f} MB of Parquet{why} in {self.seconds:.2f} s")


def lake_dir(data: DataDir) -> Path:
    return data.work_db.parent / "lake"


def publish(data: DataDir) -> Publication:
    """Publish the working database as warehouse.duckdb, atomically; see the module docstring."""
    if not data.work_db.exists():
        raise AisoError(f"nothing to publish: {data.work_db} does not exist (run `aiso run --date YYYY-MM-DD` first)")
    started = time.perf_counter()
    # held throughout: no run writes and no other publish runs meanwhile; Parquet writes spill under the limit
    con = _open_writer(data.work_db, duckdb_config())
    try:
        con.execute("SET enable_progress_bar = false")
        run(con, "warehouse/sql/changes.sql")  # also a working database from before the change log
        run(con, "warehouse/sql/lake_schema.sql")
        database_id, _, upto = run(con, "warehouse/sql/publish_state.sql").fetchone()
        last = con.execute("""SELECT publication, seq FROM meta.publications
                              ORDER BY publication DESC LIMIT 1""").fetchone()
        number = (last[0] if last else 0) + 1
        tables = _tables(con)
        lake = [t for t in LAKE_TABLES if t in tables]
        todo, detail = _partitions_to_write(con, lake, last, upto)
        written = [(table, day, *_write_partition(con, data, table, day, rows, number, str(database_id)))
                   for (table, day), rows in sorted(todo.items())]
        con.execute("""CREATE OR REPLACE TEMP TABLE _written (table_name VARCHAR, dt DATE, path VARCHAR, rows BIGINT,
                       bytes BIGINT)""")
        if written:
            con.executemany("INSERT INTO _written VALUES (?, ?, ?, ?, ?)", written)
        with transaction(con):
            run(con, "warehouse/sql/lake_record.sql", publication=number, seq=upto, database_id=str(database_id))
        _build_catalog(con, data, tables, lake, number, str(database_id), upto)
        _collect_garbage(con, data, number)
    finally:
        con.close()
    return Publication(data.warehouse, number, tuple((t, d) for t, d, *_ in written), sum(w[3] for w in written),
                       sum(w[4] for w in written), time.perf_counter() - started, detail)


def published_elsewhere(data: DataDir) -> bool:
    """True when warehouse.duckdb was published for another location of this data directory (it was moved or
    copied): its views name Parquet files by absolute path (DuckDB resolves a relative one against the reader's
    working directory), so they read the old place until the catalog is published again."""
    if not data.warehouse.exists():
        return False
    try:
        con = duckdb.connect(str(data.warehouse), read_only=True)
    except duckdb.Error:
        return False  # being replaced, or not ours to judge: the next publish settles it
    try:
        row = con.execute("SELECT data_root FROM meta.published").fetchone()
    except duckdb.Error:
        row = None  # published before the location was recorded
    finally:
        con.close()
    return row is None or row[0] != str(data.root)


def publish_quality(data: DataDir) -> Path | None:
    """After a failed run: warehouse.duckdb again, with the working database's quality.* tables (so the failure's
    pointer to quality.check_results, the quarantine and the ingest log can be followed) and everything else as it
    was last published, so analysts never see the marts of a run that did not finish. Writes no Parquet and records
    no publication: the next successful publish still covers every change since the last one. None when there is
    nothing to publish from."""
    if not data.work_db.exists():
        return None
    con = _open_writer(data.work_db, duckdb_config())
    tmp = data.root / f".{data.warehouse.name}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    try:
        con.execute("SET enable_progress_bar = false")
        home = con.execute("SELECT current_database()").fetchone()[0]
        quality = [t for t in _tables(con) if t.startswith("quality.")]
        con.execute(f"ATTACH '{_literal(tmp)}' AS {CATALOG}")
        try:
            if data.warehouse.exists():
                con.execute(f"ATTACH '{_literal(data.warehouse)}' AS previous (READ_ONLY)")
                try:
                    _copy_previous(con, home)
                finally:
                    con.execute("DETACH previous")
            has_meta = con.execute(f"""SELECT count(*) FROM duckdb_tables() WHERE database_name = '{CATALOG}'
                                       AND schema_name = 'meta' AND table_name = 'published'""").fetchone()[0]
            if not has_meta:  # nothing published before: say where this one belongs (published_elsewhere)
                con.execute(f'CREATE SCHEMA IF NOT EXISTS {CATALOG}."meta"')
                con.execute(f"""CREATE TABLE {CATALOG}.meta.published AS
                                SELECT NULL::UUID AS database_id, NULL::BIGINT AS seq, NULL::BIGINT AS publication,
                                       current_timestamp AS published_at, 'quality only' AS method,
                                       ?::VARCHAR AS data_root""", [str(data.root)])
            con.execute(f'CREATE SCHEMA IF NOT EXISTS {CATALOG}."quality"')
            for table in quality:
                con.execute(f"CREATE TABLE {CATALOG}.{_name(table)} AS SELECT * FROM {_name(table)}")
        finally:
            con.execute(f"DETACH {CATALOG}")
        os.replace(tmp, data.warehouse)
        data.warehouse.with_name(data.warehouse.name + ".wal").unlink(missing_ok=True)
    finally:
        tmp.unlink(missing_ok=True)
        con.close()
    return data.warehouse


def _copy_previous(con, home: str) -> None:
    """Every schema, table and view of the previous warehouse (attached as `previous`) but quality.*, into the
    catalog being built. Views are recreated from their SQL (they read Parquet files by absolute path)."""
    for (schema,) in con.execute("""SELECT schema_name FROM duckdb_schemas() WHERE database_name = 'previous'
                                    AND NOT internal AND schema_name NOT IN ('main', 'quality')""").fetchall():
        con.execute(f'CREATE SCHEMA IF NOT EXISTS {CATALOG}."{schema}"')
    for schema, table in con.execute("""SELECT schema_name, table_name FROM duckdb_tables()
                                        WHERE database_name = 'previous' AND schema_name <> 'quality'""").fetchall():
        con.execute(f'CREATE TABLE {CATALOG}."{schema}"."{table}" AS SELECT * FROM previous."{schema}"."{table}"')
    views = con.execute("""SELECT schema_name, sql FROM duckdb_views() WHERE database_name = 'previous'
                           AND NOT internal AND schema_name <> 'quality'""").fetchall()
    for schema, sql in views:
        con.execute(f"USE {CATALOG}.\"{schema}\"")
        try:
            con.execute(sql)
        finally:
            con.execute(f'USE "{home}"')


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    """'schema.table' -> [(column, type)] of the working database's tables, outside the meta schema."""
    out: dict[str, list[tuple[str, str]]] = {}
    for schema, table, column, typ in run(con, "warehouse/sql/publish_schema.sql").fetchall():
        out.setdefault(f"{schema}.{table}", []).append((column, typ))
    return out


def _partitions_to_write(con, lake: list[str], last, upto: int) -> tuple[dict, str]:
    """(table, dt) -> rows now, for the lake partitions to write; and why all of them are, when they are."""
    counts = {t: dict(con.execute(f"SELECT dt, count(*) FROM {_name(t)} GROUP BY dt").fetchall()) for t in lake}
    listed = {}
    for table, day, rows in con.execute("SELECT table_name, dt, rows FROM meta.lake_files").fetchall():
        listed.setdefault(table, {})[day] = rows
    if last is None:  # (also for a working database deleted and rebuilt: the publications were kept in it)
        return {(t, d): n for t in lake for d, n in counts[t].items()}, "first publish"
    todo = set()
    for table, day in run(con, "warehouse/sql/publish_changes.sql", since=last[1], upto=upto).fetchall():
        if table in counts:
            todo |= {(table, d) for d in counts[table]} if day is None else {(table, day)}
    for table in lake:  # row counts that differ from what was published: a write outside the change log
        for day in set(counts[table]) | set(listed.get(table, {})):
            if counts[table].get(day, 0) != listed.get(table, {}).get(day, 0):
                todo.add((table, day))
    return {(t, d): counts[t].get(d, 0) for t, d in todo}, ""


def _write_partition(con, data: DataDir, table: str, day: date, rows: int, number: int,
                     database_id: str) -> tuple[str | None, int, int]:
    """One day of a lake table (`rows` rows) as a new Parquet file: (path relative to the data directory, rows,
    bytes); no file for an emptied day."""
    if not rows:
        return None, 0, 0
    folder = lake_dir(data) / table / f"dt={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"p{number:08d}-{database_id[:8]}.parquet"  # never a name an older catalog still reads
    con.execute(f"COPY (SELECT * FROM {_name(table)} WHERE dt = ?) TO '{_literal(path)}' "
                f"(FORMAT parquet, COMPRESSION zstd)", [day])
    return path.relative_to(data.root).as_posix(), rows, path.stat().st_size


def _build_catalog(con, data: DataDir, tables: dict, lake: list[str], number: int, database_id: str,
                   upto: int) -> None:
    """warehouse.duckdb anew: small tables copied, a view per lake table over its files; renamed into place."""
    tmp = data.root / f".{data.warehouse.name}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    files = {}
    for table, path in con.execute("SELECT table_name, path FROM meta.lake_files ORDER BY table_name, dt").fetchall():
        files.setdefault(table, []).append(str(data.root / path))
    home = con.execute("SELECT current_database()").fetchone()[0]
    con.execute(f"ATTACH '{_literal(tmp)}' AS {CATALOG}")
    try:
        for schema in sorted({t.split(".")[0] for t in tables}):
            con.execute(f'CREATE SCHEMA {CATALOG}."{schema}"')
        viewed = {t: c for t, c in tables.items() if t in lake and files.get(t)}
        for table in tables.keys() - viewed.keys():  # the small tables first: a view may read one
            con.execute(f"CREATE TABLE {CATALOG}.{_name(table)} AS SELECT * FROM {_name(table)}")
        for table, columns in viewed.items():
            listing = ", ".join(f"'{_literal(literal(f))}'" for f in files[table])
            reader = f"read_parquet([{listing}], union_by_name = true)"
            # a column added since every listed file was written reads as NULL until its days are rewritten
            present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()}
            flag, flags = DAY_FLAGS.get(table, (None, None))
            if flags not in tables:
                flag = None

            def column(c: str, t: str) -> str:
                value = f'CAST(p."{c}" AS {t})' if c in present else f"NULL::{t}"
                return f'coalesce(f."{c}", {value})' if c == flag else value
            select = ", ".join(f'{column(c, t)} AS "{c}"' for c, t in columns)
            join = f" LEFT JOIN {_name(flags)} AS f ON f.dt = p.dt" if flag else ""
            con.execute(f'USE {CATALOG}."{table.split(".")[0]}"')  # the flag table: the catalog's own
            try:
                con.execute(f"CREATE VIEW {CATALOG}.{_name(table)} AS SELECT {select} FROM {reader} AS p{join}")
            finally:
                con.execute(f'USE "{home}"')
        run(con, "warehouse/sql/published.sql", database_id=database_id, seq=upto, publication=number,
            data_root=str(data.root))
    finally:
        con.execute(f"DETACH {CATALOG}")
    os.replace(tmp, data.warehouse)
    # A WAL next to warehouse.duckdb can only be left by someone who opened the old file read-write: DuckDB would
    # replay it into the new one
    data.warehouse.with_name(data.warehouse.name + ".wal").unlink(missing_ok=True)


def _collect_garbage(con, data: DataDir, number: int) -> None:
    """Delete Parquet files retired KEEP_PUBLICATIONS publishes ago or earlier, files no publish recorded (a crash
    between writing and recording them), and the published copies of the previous design."""
    gone = [p for (p,) in con.execute("SELECT path FROM meta.lake_retired WHERE publication <= ?",
                                      [number - KEEP_PUBLICATIONS]).fetchall()]
    for path in gone:
        (data.root / path).unlink(missing_ok=True)
    con.execute("DELETE FROM meta.lake_retired WHERE publication <= ?", [number - KEEP_PUBLICATIONS])
    known = {p for (p,) in con.execute("SELECT path FROM meta.lake_files UNION ALL SELECT path FROM meta.lake_retired"
                                       ).fetchall()}
    for path in lake_dir(data).rglob("*.parquet"):
        if path.relative_to(data.root).as_posix() not in known:
            path.unlink()
    for folder in sorted((p for p in lake_dir(data).rglob("dt=*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    for old in data.work_db.parent.glob("published-*.duckdb*"):  # before lake publishing: two full copies
        old.unlink(missing_ok=True)
    for leftover in data.root.glob(f".{data.warehouse.name}.*.tmp"):
        leftover.unlink(missing_ok=True)


def _name(table: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in table.split("."))


def _literal(path) -> str:
    return str(path).replace("'", "''")
