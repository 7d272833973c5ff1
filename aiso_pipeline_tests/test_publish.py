"""Publishing warehouse.duckdb: big tables as Parquet written per changed day, small ones copied, always atomic."""
import os
import subprocess
import sys
import textwrap

import duckdb
import pytest

from aiso_pipeline import warehouse
from aiso_pipeline.errors import AisoError
from aiso_pipeline.warehouse.publishing import KEEP_PUBLICATIONS, LAKE_TABLES, lake_dir
from aiso_pipeline_tests.conftest import inference, ingest, land, product, query

D1, D2, D3, D4 = "2025-06-01", "2025-06-02", "2025-06-03", "2025-06-04"
INGEST_TABLES = ("quality.ingest_log", "quality.quarantine", "raw.inference_events")


def day(dt: str, n: int, prefix: str = "r", bad: int = 0) -> list:
    """n valid inference rows of day dt (ids prefix+i), then `bad` rows that go to quarantine."""
    return ([inference(f"{prefix}{dt}-{i}", timestamp=f"{dt}T10:00:00Z", input_tokens=i) for i in range(n)]
            + [inference(f"{prefix}{dt}-bad{i}", timestamp=f"{dt}T10:00:00Z", confidence=7) for i in range(bad)])


def load(data, dt: str, n: int, prefix: str = "r", bad: int = 0) -> None:
    land(data, "inference", dt, "events.jsonl", day(dt, n, prefix, bad))
    ingest(data, "inference", dt)


def snapshot(con) -> dict:
    """Every table outside meta, whole and sorted."""
    tables = con.execute("""SELECT table_schema || '.' || table_name FROM information_schema.tables
                            WHERE table_catalog = current_database() AND table_schema <> 'meta'
                            ORDER BY ALL""").fetchall()
    return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for (t,) in tables}


def published(data) -> dict:
    con = duckdb.connect(str(data.warehouse), read_only=True)
    try:
        return snapshot(con)
    finally:
        con.close()


def assert_published(data) -> None:
    """warehouse.duckdb is the working database, table for table and row for row (types included); tidy beside it."""
    with warehouse.connect(data) as con:
        work = snapshot(con)
        types = con.execute(TYPES).fetchall()
    assert work["raw.inference_events"]  # (comparing empty tables would prove little)
    assert published(data) == work
    con = duckdb.connect(str(data.warehouse), read_only=True)
    try:
        assert con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'meta'"
                           ).fetchall() == [("published",)]
        assert con.execute(TYPES).fetchall() == types
        views = {f"{s}.{t}" for s, t in con.execute("SELECT schema_name, view_name FROM duckdb_views() "
                                                     "WHERE NOT internal").fetchall()}
        assert views == {t for t in LAKE_TABLES if work.get(t)}  # the big tables are Parquet, the rest copied
    finally:
        con.close()
    leftovers = [p.name for folder in (data.root, data.work_db.parent) for p in folder.iterdir()
                 if p.name.endswith((".wal", ".tmp")) and p.name != "pipeline.duckdb.wal"]
    assert leftovers == []


TYPES = """SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns
           WHERE table_catalog = current_database() AND table_schema <> 'meta' ORDER BY ALL"""


def files(data) -> set:
    return {p.relative_to(lake_dir(data)).as_posix() for p in lake_dir(data).rglob("*.parquet")}


def partitions(pub) -> set:
    return {(t, str(d)) for t, d in pub.partitions}


class Analyst:
    """Another process with warehouse.duckdb open read-only (DuckDB's file locks are per process)."""

    SCRIPT = textwrap.dedent("""
        import duckdb, sys
        con = duckdb.connect(sys.argv[1], read_only=True)
        for line in sys.stdin:
            print(con.execute("SELECT count(*), coalesce(sum(input_tokens), 0) FROM raw.inference_events").fetchone(),
                  flush=True)
    """)

    def __init__(self, data):
        self.proc = subprocess.Popen([sys.executable, "-c", self.SCRIPT, str(data.warehouse)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def read(self) -> str:
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self) -> None:
        self.proc.stdin.close()
        assert self.proc.wait(timeout=30) == 0


def test_later_publishes_write_only_the_partitions_that_changed(data):
    load(data, D1, 5)
    first = warehouse.publish(data)
    assert first.detail == "first publish" and partitions(first) == {("raw.inference_events", D1)}
    assert_published(data)
    load(data, D2, 6, bad=2)
    second = warehouse.publish(data)
    assert partitions(second) == {("raw.inference_events", D2), ("quality.quarantine", D2)}
    assert second.rows == 6 + 2 and second.detail == ""
    assert_published(data)
    assert partitions(warehouse.publish(data)) == set()  # nothing changed: nothing written
    # re-ingesting one day: that day is written again, no other (its quarantine was replaced too, empty again)
    load(data, D1, 4, prefix="again")
    assert partitions(warehouse.publish(data)) == {("raw.inference_events", D1), ("quality.quarantine", D1)}
    assert_published(data)
    assert len(published(data)["raw.inference_events"]) == 4 + 6


def test_a_rerun_with_other_data_and_an_emptied_partition_are_published(data):
    load(data, D1, 3, bad=1)
    warehouse.publish(data)
    land(data, "inference", D1, "events.jsonl", day(D1, 2, prefix="other"))  # the quarantined row is gone now
    ingest(data, "inference", D1)
    pub = warehouse.publish(data)
    assert partitions(pub) == {("raw.inference_events", D1), ("quality.quarantine", D1)}
    assert_published(data)
    tables = published(data)
    assert {r[0] for r in tables["raw.inference_events"]} == {f"other{D1}-{i}" for i in range(2)}
    assert tables["quality.quarantine"] == [] and len(tables["quality.ingest_log"]) == 1


def test_a_closing_attribution_window_rewrites_no_parquet_and_is_published(data):
    """The nightly's refresh of an earlier day whose window only closed since its join flips window_closed: the
    published joined_outcomes shows the flip, yet its Parquet file is not written again."""
    from aiso_pipeline import outcomes

    land(data, "inference", D1, "events.jsonl", [inference("r1", timestamp=f"{D1}T10:00:00Z")])
    ingest(data, "inference", D1)
    land(data, "product", D1, "events.jsonl", [product("m1", request_id="r1", timestamp=f"{D1}T10:05:00Z")])
    ingest(data, "product", D1)

    def join():
        with warehouse.connect(data) as con:
            return outcomes.build_joined_outcomes(con, D1)
    assert join().window_closed is False
    assert ("marts.joined_outcomes", D1) in partitions(warehouse.publish(data))
    # product data of D3 reach past D1's 24-hour window: D1's window closes, its join inputs (D1..D2) unchanged
    land(data, "product", D3, "events.jsonl", [product("m9", user_id="someone", timestamp=f"{D3}T01:00:00Z")])
    ingest(data, "product", D3)
    refreshed = join()
    assert refreshed.window_closed is True and refreshed.recomputed is False
    assert ("marts.joined_outcomes", D1) not in partitions(warehouse.publish(data))
    assert_published(data)  # the view reads the flag from marts.outcome_windows: the working rows exactly
    con = duckdb.connect(str(data.warehouse), read_only=True)
    assert con.execute("SELECT DISTINCT window_closed FROM marts.joined_outcomes").fetchall() == [(True,)]
    con.close()


def test_an_open_analyst_connection_keeps_its_snapshot_and_never_blocks_a_publish(data):
    load(data, D1, 5)
    warehouse.publish(data)
    analyst = Analyst(data)
    try:
        before = analyst.read()
        assert before == str((5, sum(range(5))))
        # the day the analyst reads is replaced, then other days land: the analyst's catalog and files stay
        for i in range(KEEP_PUBLICATIONS):
            load(data, D1, 7 + i, prefix=f"again{i}")
            warehouse.publish(data)
            assert analyst.read() == before
        assert_published(data)
        assert len(published(data)["raw.inference_events"]) == 7 + KEEP_PUBLICATIONS - 1
    finally:
        analyst.close()


def test_replaced_files_are_deleted_after_a_few_publishes_and_leftovers_at_once(data):
    load(data, D1, 5)
    warehouse.publish(data)
    original = files(data)
    stray = lake_dir(data) / "raw.inference_events" / f"dt={D2}" / "p99999999-crashed.parquet"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"a publish that died before recording its file")
    load(data, D1, 6, prefix="again")
    warehouse.publish(data)
    assert original < files(data) and not stray.exists()  # the replaced file is kept for older catalogs
    for _ in range(KEEP_PUBLICATIONS - 1):
        warehouse.publish(data)
        assert original <= files(data)
    warehouse.publish(data)
    assert not original & files(data) and len(files(data)) == 1
    assert_published(data)


def test_writes_outside_the_change_log_are_caught_by_row_counts(data):
    load(data, D1, 5)
    warehouse.publish(data)
    with warehouse.connect(data) as con:  # a write that bypasses transaction(writes=...)
        con.execute("DELETE FROM raw.inference_events WHERE request_id = ?", [f"r{D1}-0"])
    assert partitions(warehouse.publish(data)) == {("raw.inference_events", D1)}
    assert_published(data)
    with warehouse.connect(data) as con:  # a column added to a small table is copied with it
        con.execute("ALTER TABLE quality.ingest_log ADD COLUMN note VARCHAR")
    warehouse.publish(data)
    assert_published(data)


def test_whole_table_writes_are_written_whole(data):
    """What the key-hash refill declares: (table, None)."""
    load(data, D1, 5)
    load(data, D2, 5)
    warehouse.publish(data)
    with warehouse.connect(data) as con:
        with warehouse.transaction(con, writes=[("raw.inference_events", None), ("raw.inference_events", D1)]):
            con.execute("UPDATE raw.inference_events SET output_tokens = 42")
    pub = warehouse.publish(data)
    assert partitions(pub) == {("raw.inference_events", D1), ("raw.inference_events", D2)} and pub.rows == 10
    assert_published(data)


def test_a_rebuilt_working_database_is_written_in_full(data):
    """Its change log and publications start over: everything is written, under names no old catalog reads."""
    load(data, D1, 5)
    warehouse.publish(data)
    data.work_db.unlink()
    load(data, D2, 3)
    pub = warehouse.publish(data)
    assert pub.detail == "first publish" and partitions(pub) == {("raw.inference_events", D2)}
    assert_published(data)
    assert len(published(data)["raw.inference_events"]) == 3
    assert len(files(data)) == 1  # the old database's files are nobody's now


def test_the_change_log_keeps_only_what_is_not_published(data):
    for i, dt in enumerate((D1, D2)):
        load(data, dt, 2 + i)
        warehouse.publish(data)
        assert query(data, "SELECT count(*) FROM meta.partition_writes") == [(0,)]
    load(data, D3, 4)
    logged = query(data, "SELECT DISTINCT table_name, CAST(dt AS VARCHAR) FROM meta.partition_writes")
    assert set(logged) == {(t, D3) for t in INGEST_TABLES}


def test_a_transaction_declares_schema_qualified_tables(data):
    with warehouse.connect(data) as con:
        with pytest.raises(ValueError, match="schema.table"):
            with warehouse.transaction(con, writes=[("inference_events", D1)]):
                pass
        with pytest.raises(RuntimeError):  # a failed block logs nothing
            with warehouse.transaction(con, writes=[("raw.inference_events", D1)]):
                raise RuntimeError("boom")
        assert con.execute("SELECT count(*) FROM meta.partition_writes WHERE dt = ?", [D1]).fetchone() == (0,)


def test_nothing_to_publish_without_a_working_database(data):
    with pytest.raises(AisoError, match="nothing to publish"):
        warehouse.publish(data)


def test_product_events_and_marts_reach_the_warehouse(data):
    """Every writer declares what it replaces: a full day's run, then a rerun, published incrementally."""
    from aiso_pipeline.outcomes import build_cost_daily, build_joined_outcomes, build_outcome_coverage

    land(data, "inference", D1, "events.jsonl", day(D1, 4))
    land(data, "product", D1, "p.jsonl", [product(f"m{i}", request_id=f"r{D1}-{i}", timestamp=f"{D1}T11:00:00Z")
                                          for i in range(2)])

    def nightly():
        ingest(data, "inference", D1)
        ingest(data, "product", D1)
        with warehouse.connect(data) as con:
            build_joined_outcomes(con, D1)
            build_outcome_coverage(con, D1)
            build_cost_daily(con, D1)

    nightly()
    warehouse.publish(data)
    nightly()
    pub = warehouse.publish(data)
    assert {t for t, _ in pub.partitions} == {"raw.inference_events", "raw.product_events", "marts.joined_outcomes",
                                              "quality.quarantine"}  # replaced, and still empty
    assert_published(data)
    tables = published(data)
    assert tables["marts.joined_outcomes"] and tables["marts.cost_daily"] and tables["raw.product_events"]
