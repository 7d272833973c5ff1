"""Great Expectations 1.24 evaluating inside the pipeline's open DuckDB connection: a small adapter.

Two problems, two fixes, nothing else changed:

1. GX's SQL datasource returns no rows on DuckDB (GX issue #11579). `SqlAlchemyExecutionEngine.execute_query`
   executes the query in `with self.get_connection() as connection:` and returns the live CursorResult *after*
   the `with` block: the connection goes back to the pool, the pool's reset-on-return rolls back the DuckDB
   transaction SQLAlchemy auto-began, and the DuckDB result is gone before GX fetches it. Every metric then comes
   back empty and every expectation fails with `{}`. `DuckDBExecutionEngine.execute_query` runs the same code but
   buffers the rows (`Result.freeze()`) while the connection is still open, and hands GX a `Result` over the
   buffer. The metric queries GX sends are aggregates (one row) or LIMITed samples, so the buffer is small.

2. The database file is open read-write by the pipeline (DuckDB: one read-write process per file, and within a
   process a second `duckdb.connect` to the file must repeat the first one's config). So GX must not open the
   file itself: the SQLAlchemy engine is built with `creator=`, which returns `pipeline_connection.cursor()` —
   DuckDB's cursor is a new connection to the *same* database instance (same memory limit, same storage, its own
   transaction) — wrapped in duckdb_engine's `ConnectionWrapper`, the object duckdb_engine's own `connect()`
   returns. The URL `duckdb:///:memory:` only selects the dialect; it never opens anything.

`DuckDBConnectionDatasource` (fluent type `aiso_duckdb`, `context.data_sources.add_aiso_duckdb(...)`) is GX's
`SQLDatasource` with `execution_engine_type` returning the engine above; its `kwargs` go to
`sqlalchemy.create_engine` as GX documents, which is where `creator` rides. Query assets and batch definitions are
GX's own, so expectations compile to SQL that runs in DuckDB: no row of a partition goes through pandas.

`gx_session(con)` gives an ephemeral GX context with that datasource and closes the engine's cursors on exit.
Import this module only where GX is needed: importing great_expectations takes seconds.

At interpreter exit the module takes duckdb_engine's TRY_CAST compiler off SQLAlchemy's `TryCast` class
(`_release_duckdb_engine_at_exit`). Without that, a process that ran the validation checks printed about 40
`nanobind: leaked ...` lines after everything else it wrote. See that function for why.
"""
from __future__ import annotations

import atexit
from contextlib import contextmanager
from typing import Iterator, Literal, Type

import duckdb
import duckdb_engine
import great_expectations as gx
import sqlalchemy
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.datasource.fluent.sql_datasource import SQLDatasource
from great_expectations.execution_engine import SqlAlchemyExecutionEngine

DATASOURCE = "aiso_warehouse"


class DuckDBExecutionEngine(SqlAlchemyExecutionEngine):
    """GX's SQLAlchemy engine with results buffered before the connection is released (fix 1)."""

    def execute_query(self, query):  # same signature and body as GX's, plus freeze() inside the `with`
        with self.get_connection() as connection:
            result = self._execute_query_with_recovery(connection, query)
            return result.freeze()()


class DuckDBConnectionDatasource(SQLDatasource):
    """GX's generic SQL datasource, evaluated by DuckDBExecutionEngine."""

    type: Literal["aiso_duckdb"] = "aiso_duckdb"

    @property
    def execution_engine_type(self) -> Type[SqlAlchemyExecutionEngine]:
        return DuckDBExecutionEngine


def cursor_creator(con: duckdb.DuckDBPyConnection):
    """SQLAlchemy `creator`: a new DuckDB connection (cursor) on the pipeline's database instance (fix 2)."""

    def create() -> duckdb_engine.ConnectionWrapper:
        cursor = con.cursor()
        cursor.execute("SET TimeZone = 'UTC'")  # as warehouse.connect() does; a setting of each connection
        return duckdb_engine.ConnectionWrapper(cursor)

    return create


@contextmanager
def gx_session(con: duckdb.DuckDBPyConnection) -> Iterator[tuple[gx.data_context.AbstractDataContext,
                                                                DuckDBConnectionDatasource]]:
    """An ephemeral GX context whose SQL datasource runs on `con`'s database; engine cursors closed on exit."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    datasource = context.data_sources.add_aiso_duckdb(
        DATASOURCE, connection_string="duckdb:///:memory:", kwargs={"creator": cursor_creator(con)})
    try:
        yield context, datasource
    finally:
        engine = datasource.get_execution_engine()
        engine.engine.dispose()
        if engine._connection is not None:  # kept open by GX for dialects that need one persisted connection
            engine._connection.close()
        if datasource._engine is not None:
            datasource._engine.dispose()


def _release_duckdb_engine_at_exit() -> None:
    """Remove the one reference from SQLAlchemy's classes into duckdb_engine, so DuckDB's types are freed at exit.

    The leak report lists no connection, cursor or GX object. Those are all freed. What stays is the
    `_duckdb.DuckDBPyConnection` *type*, its methods, the enums used as their defaults, and the `DuckDBPyType`
    constants. nanobind checks for leftover objects after Python has finished shutting down, and prints whatever
    it finds. Two library behaviours combine to keep these objects reachable:

    * When duckdb_engine is imported it runs `@compiles(TryCast, "duckdb")` (duckdb_engine/__init__.py). This
      stores `visit_try_cast` in `sqlalchemy.sql.elements.TryCast._compiler_dispatcher.specs`. The function's
      `__globals__` is duckdb_engine's module namespace. In that namespace, `ConnectionWrapper` and
      `CursorWrapper` are annotated `__c: duckdb.DuckDBPyConnection`, and so are `apply_config` and the two
      `__init__` methods. When Python shuts down it wipes module namespaces, but only those of modules that are
      still alive at that point. The duckdb_engine module object is freed before that step, so its namespace is
      never wiped.
    * SQLAlchemy's classes, `TryCast` among them, are never freed at shutdown in a process that also imports
      `sqlalchemy.orm` and `jsonschema`. great_expectations imports both. jsonschema's `referencing` registries
      store their resources in rpds-py maps. The garbage collector does not track those maps, so it cannot
      collect the reference cycles that go through them, and objects reachable from those cycles survive
      shutdown, including `typing` internals and, through them, SQLAlchemy's classes. This is reproducible
      without any pipeline code: `python -c "import duckdb_engine, sqlalchemy.orm, jsonschema"` prints the same
      39 lines, and leaving out any one of the three imports prints none.

    Neither behaviour can be changed from here, so this removes the one link at exit, and only if the entry is
    still duckdb_engine's own. Nothing is compiled after this point. If something were, SQLAlchemy's default
    compiler also emits `TRY_CAST(x AS t)`.
    """
    try_cast = getattr(sqlalchemy, "TryCast", None)
    specs = getattr(vars(try_cast).get("_compiler_dispatcher") if try_cast is not None else None, "specs", None)
    ours = getattr(duckdb_engine, "visit_try_cast", None)
    if specs is not None and ours is not None and specs.get("duckdb") is ours:
        del specs["duckdb"]


atexit.register(_release_duckdb_engine_at_exit)
