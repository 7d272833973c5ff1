"""The pipeline's DuckDB database: connections, SQL files, and atomic publishing for analysts."""
from __future__ import annotations

import os
import re
import shutil
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Iterator

import duckdb

from aiso_pipeline.config import DataDir
from aiso_pipeline.errors import AisoError

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


@cache
def sql(name: str) -> str:
    """Text of a .sql file, by path relative to the package, e.g. 'ingest/sql/inference_parse.sql'."""
    return (PACKAGE_ROOT / name).read_text()


@contextmanager
def connect(data: DataDir, memory_limit: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection to the pipeline's working database, with the contract tables created."""
    data.work_db.parent.mkdir(parents=True, exist_ok=True)
    config = {"memory_limit": memory_limit} if memory_limit else {}
    try:
        con = duckdb.connect(str(data.work_db), config=config)
    except duckdb.IOException as e:
        raise AisoError(
            f"cannot open {data.work_db}: {str(e).splitlines()[0]} (another aiso run is writing; wait for it to finish)"
        ) from e
    try:
        con.execute("SET TimeZone = 'UTC'")  # timestamps display and truncate to days in UTC
        con.execute(sql("warehouse/sql/schema.sql"))
        yield con
    finally:
        con.close()


def publish(data: DataDir) -> Path:
    """Copy the working database to warehouse.duckdb atomically (write a copy, then rename).

    Analysts hold read-only connections to warehouse.duckdb; the pipeline never writes to it in place, so an
    open analyst connection neither blocks a run nor sees half of one.
    """
    if not data.work_db.exists():
        raise AisoError(f"nothing to publish: {data.work_db} does not exist (run `aiso run --date YYYY-MM-DD` first)")
    con = duckdb.connect(str(data.work_db))
    con.execute("CHECKPOINT")  # fold the WAL into the file so the copy is complete on its own
    con.close()
    tmp = data.warehouse.with_name(f".{data.warehouse.name}.{os.getpid()}.tmp")
    shutil.copyfile(data.work_db, tmp)
    os.replace(tmp, data.warehouse)
    return data.warehouse


_PARAM = re.compile(r"\$([A-Za-z_]\w*)")


def statements(text: str) -> list[str]:
    """Split a .sql file into statements. Convention: a statement ends with ';' at the end of a line."""
    parts = re.split(r";[ \t]*(?:--[^\n]*)?$", text, flags=re.MULTILINE)
    return [p.strip() for p in parts if re.sub(r"--[^\n]*", "", p).strip()]


def run(con: duckdb.DuckDBPyConnection, name: str, **params) -> duckdb.DuckDBPyConnection:
    """Run every statement of a .sql file, binding the named parameters ($name) each statement uses."""
    result = con
    for stmt in statements(sql(name)):
        code = re.sub(r"--[^\n]*", "", stmt)  # a $name in a comment is not a parameter
        used = {k: params[k] for k in dict.fromkeys(_PARAM.findall(code)) if k in params}
        result = con.execute(stmt, used)
    return result
