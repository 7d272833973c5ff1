"""The pipeline's DuckDB database: connections, SQL files, and atomic publishing for analysts (publishing.py)."""
from __future__ import annotations

import os
import re
import time
from contextlib import contextmanager
from datetime import date
from functools import cache
from pathlib import Path
from typing import Iterable, Iterator

import duckdb

from aiso_pipeline.config import DataDir
from aiso_pipeline.errors import AisoError

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


@cache
def sql(name: str) -> str:
    """Text of a .sql file, by path relative to the package, e.g. 'ingest/sql/inference_parse.sql'."""
    return (PACKAGE_ROOT / name).read_text()


_SLOT = re.compile(r"\{\{(\w+)\}\}")


def fill(name: str, **slots: str) -> str:
    """A .sql template (path as for sql()) with its {{slot}}s filled in from a declaration. Every slot must be
    given and used: a template and its renderer cannot drift apart silently."""
    text = sql(name)
    found = set(_SLOT.findall(text))
    if found != set(slots):
        raise ValueError(f"{name}: slots {sorted(found)} but rendered with {sorted(slots)}")
    return _SLOT.sub(lambda m: slots[m.group(1)], text)


DEFAULT_MEMORY_LIMIT = "3GB"  # per pipeline connection; $AISO_MEMORY_LIMIT or the resource's memory_limit overrides
LOCK_WAIT_SECONDS = 1800.0  # how long a writer waits for another process to close the working database


def _open_writer(path: Path, config: dict) -> duckdb.DuckDBPyConnection:
    """Open the working database read-write. DuckDB allows one writer process; while another one (a step of
    another run, a publish) has it open, wait and retry, up to $AISO_LOCK_WAIT_SECONDS (default 1800 s)."""
    wait = lock_wait_seconds()
    deadline = time.monotonic() + wait
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path), config=config)
        except duckdb.IOException as e:
            if "lock" not in str(e).lower() or time.monotonic() >= deadline:
                raise AisoError(f"cannot open {path}: {str(e).splitlines()[0]} (another process kept it open for "
                                f"{wait:.0f} s; is an aiso run stuck?)") from e
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


_SIZE = re.compile(r"\s*[0-9]+(\.[0-9]+)?\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)\s*", re.IGNORECASE)


def duckdb_config(memory_limit: str | None = None) -> dict:
    """Settings of every pipeline connection. DuckDB's default memory limit (80% of RAM) lets a 10M-row day hold
    ~8 GB; with a limit it spills to disk instead."""
    limit = memory_limit or os.environ.get("AISO_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT
    if not _SIZE.fullmatch(limit):
        where = "memory_limit" if memory_limit else "AISO_MEMORY_LIMIT"
        raise AisoError(f"{where}={limit!r} is not a size such as 3GB or 512MB: fix it or unset it")
    return {"memory_limit": limit.strip()}


def lock_wait_seconds() -> float:
    raw = os.environ.get("AISO_LOCK_WAIT_SECONDS")
    if raw is None:
        return LOCK_WAIT_SECONDS
    try:
        wait = float(raw)
    except ValueError:
        wait = -1.0
    if not (0 <= wait < float("inf")):
        raise AisoError(f"AISO_LOCK_WAIT_SECONDS={raw!r} is not a number of seconds >= 0: fix it or unset it")
    return wait


@contextmanager
def connect(data: DataDir, memory_limit: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection to the pipeline's working database, with the contract tables created."""
    data.work_db.parent.mkdir(parents=True, exist_ok=True)
    con = _open_writer(data.work_db, duckdb_config(memory_limit))
    try:
        con.execute("SET TimeZone = 'UTC'")  # timestamps display and truncate to days in UTC
        con.execute("SET enable_progress_bar = false")  # no terminal bars in run logs
        con.execute(sql("warehouse/sql/schema.sql"))
        con.execute(sql("warehouse/sql/changes.sql"))
        con.execute(sql("warehouse/sql/feature_shapes.sql"))
        if not run(con, "warehouse/sql/key_hashes.sql").fetchone()[0]:
            with transaction(con, writes=[("raw.inference_events", None), ("raw.product_events", None)]):
                run(con, "warehouse/sql/key_hashes_refill.sql")
        yield con
    finally:
        con.close()


def work_db_exists(data: DataDir) -> bool:
    return data.work_db.exists()


_TABLE = re.compile(r"[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*")


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection,
                writes: Iterable[tuple[str, str | date | None]] = ()) -> Iterator[duckdb.DuckDBPyConnection]:
    """All of the block's writes or none: how every partition is replaced (delete, then insert).

    `writes` declares what the block replaces: ('schema.table', dt) pairs, dt None for the whole table. They are
    logged in meta.partition_writes in the same transaction, and publish() writes exactly those partitions of the
    big tables to the analysts' warehouse: a write the block does not declare is caught only if it changes a day's
    row count (small tables are copied whole anyway).
    """
    writes = list(writes)
    for table, _ in writes:
        if not _TABLE.fullmatch(table):
            raise ValueError(f"transaction(writes=...): {table!r} is not a 'schema.table' name")
    if writes:
        con.execute(sql("warehouse/sql/changes.sql"))  # also on connections not made by connect() (tests, tools)
    con.execute("BEGIN TRANSACTION")
    try:
        for table, day in writes:
            run(con, "warehouse/sql/log_write.sql", table_name=table, dt=day)
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


_PARAM = re.compile(r"\$([A-Za-z_]\w*)")


def statements(text: str) -> list[str]:
    """Split a .sql file into statements. Convention: a statement ends with ';' at the end of a line."""
    parts = re.split(r";[ \t]*(?:--[^\n]*)?$", text, flags=re.MULTILINE)
    return [p.strip() for p in parts if re.sub(r"--[^\n]*", "", p).strip()]


def run(con: duckdb.DuckDBPyConnection, name: str, **params) -> duckdb.DuckDBPyConnection:
    """Run every statement of a .sql file, binding the named parameters ($name) each statement uses."""
    return run_sql(con, sql(name), **params)


def run_sql(con: duckdb.DuckDBPyConnection, text: str, **params) -> duckdb.DuckDBPyConnection:
    """run() for SQL text (e.g. rendered from a declaration)."""
    result = con
    for stmt in statements(text):
        code = re.sub(r"--[^\n]*", "", stmt)  # a $name in a comment is not a parameter
        used = {k: params[k] for k in dict.fromkeys(_PARAM.findall(code)) if k in params}
        result = con.execute(stmt, used)
    return result


# publishing uses sql() and run() above
from aiso_pipeline.warehouse.publishing import (Publication, publish, publish_quality,  # noqa: E402
                                                 published_elsewhere)
