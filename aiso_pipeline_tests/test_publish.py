"""Publishing warehouse.duckdb: incremental between two published copies, a full copy when it must, always atomic."""
import os
import subprocess
import sys
import textwrap

import duckdb
import pytest

from aiso_pipeline import warehouse
from aiso_pipeline.errors import AisoError
from aiso_pipeline.warehouse.publishing import slot_path
from aiso_pipeline_tests.conftest import inference, ingest, land, product, query

D1, D2, D3, D4 = "2025-06-01", "2025-06-02", "2025-06-03", "2025-06-04"
INGEST_TABLES = ("quality.ingest_log", "quality.quarantine", "raw.inference_events")


@pytest.fixture(autouse=True)
def in_place_whenever_possible(monkeypatch):
    """Test histories are a few rows: by the default share (INCREMENTAL_SHARE) most publishes would copy in full."""
    monkeypatch.setenv("AISO_PUBLISH_INCREMENTAL_SHARE", "1")


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
    """warehouse.duckdb is the working database, table for table and row for row; tidy beside it."""
    with warehouse.connect(data) as con:
        work = snapshot(con)
    assert work["raw.inference_events"]  # (comparing empty tables would prove little)
    assert published(data) == work
    con = duckdb.connect(str(data.warehouse), read_only=True)
    try:
        assert con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'meta'"
                           ).fetchall() == [("published",)]
    finally:
        con.close()
    current = os.stat(data.warehouse)
    assert any(os.path.samestat(current, os.stat(slot_path(data, s))) for s in "ab")  # a link, not a copy
    leftovers = [p.name for folder in (data.root, data.work_db.parent) for p in folder.iterdir()
                 if p.name.endswith((".wal", ".tmp")) and p.name != "pipeline.duckdb.wal"]
    assert leftovers == []


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


def test_later_publishes_copy_only_the_partitions_that_changed(data):
    load(data, D1, 5, bad=1)
    first = warehouse.publish(data)
    assert first.method == "full copy" and first.bytes_copied > 0
    assert first.path == data.warehouse and os.fspath(first) == str(data.warehouse)
    assert slot_path(data, "a").exists() and slot_path(data, "b").exists()  # both copies from the start
    assert_published(data)

    load(data, D2, 7)
    second = warehouse.publish(data)
    assert second.method == "incremental", second.detail
    assert partitions(second) == {(t, D2) for t in INGEST_TABLES}
    assert second.rows == 7 + 1  # the events and the ingest_log row (no quarantine)
    assert_published(data)

    # the other copy was last published before D2: it catches up on D2, and only on D2
    third = warehouse.publish(data)
    assert third.method == "incremental" and partitions(third) == {(t, D2) for t in INGEST_TABLES}
    assert_published(data)
    nothing = warehouse.publish(data)
    assert (nothing.method, nothing.partitions, nothing.rows) == ("incremental", (), 0)

    # re-ingesting one day: that day is copied, no other
    load(data, D1, 3, prefix="again")
    rerun = warehouse.publish(data)
    assert rerun.method == "incremental" and partitions(rerun) == {(t, D1) for t in INGEST_TABLES}
    assert rerun.rows == 3 + 1
    assert "copied" not in rerun.summary() and "3 partition(s)" in rerun.summary()
    assert_published(data)


def test_a_rerun_with_other_data_and_an_emptied_partition_are_published(data):
    load(data, D1, 5)
    load(data, D2, 4, bad=2)
    warehouse.publish(data)
    warehouse.publish(data)  # both copies published at least once since the start

    load(data, D1, 2, prefix="other")  # same partition, different rows
    (data.partition_dir("inference", D2) / "events.jsonl").unlink()
    ingest(data, "inference", D2)  # D2 rewritten empty: its events, quarantine and ingest log rows go
    for _ in range(2):  # each copy in turn
        pub = warehouse.publish(data)
        assert pub.method == "incremental"
        assert partitions(pub) == {(t, d) for t in INGEST_TABLES for d in (D1, D2)}
        assert_published(data)
    tables = published(data)
    assert {r[0] for r in tables["raw.inference_events"]} == {f"other{D1}-{i}" for i in range(2)}
    assert tables["quality.quarantine"] == [] and len(tables["quality.ingest_log"]) == 1


def test_an_open_analyst_connection_keeps_its_snapshot_and_never_blocks_a_publish(data):
    load(data, D1, 5)
    warehouse.publish(data)  # current: a
    analyst = Analyst(data)
    try:
        before = analyst.read()
        assert before == str((5, sum(range(5))))

        load(data, D2, 6)
        assert warehouse.publish(data).method == "incremental"  # b: nobody has it open
        assert analyst.read() == before
        assert_published(data)

        # a is the standby now and the analyst still has it open: a full copy replaces it beside the open file
        load(data, D3, 7)
        held = warehouse.publish(data)
        assert held.method == "full copy" and "held open by a reader" in held.detail
        assert analyst.read() == before
        assert_published(data)

        load(data, D4, 8)
        assert warehouse.publish(data).method == "incremental"  # b again
        assert analyst.read() == before
        assert_published(data)
        assert len(published(data)["raw.inference_events"]) == 5 + 6 + 7 + 8
    finally:
        analyst.close()
    after = warehouse.publish(data)  # the fresh a, no longer held by anyone
    assert after.method == "incremental" and partitions(after) == {(t, D4) for t in INGEST_TABLES}
    assert_published(data)


def test_a_reader_in_this_process_is_seen_too(data):
    """DuckDB's lock does not keep this process out of a file it has open itself: publish checks its descriptors."""
    load(data, D1, 5)
    warehouse.publish(data)
    reader = duckdb.connect(str(data.warehouse), read_only=True)
    try:
        load(data, D2, 6)
        assert warehouse.publish(data).method == "incremental"
        load(data, D3, 7)
        pub = warehouse.publish(data)
        assert pub.method == "full copy" and "open in this process" in pub.detail
        assert reader.execute("SELECT count(*) FROM raw.inference_events").fetchone() == (5,)
    finally:
        reader.close()
    assert_published(data)


def test_changed_tables_and_untracked_writes_fall_back_to_a_full_copy(data):
    load(data, D1, 5)
    warehouse.publish(data)
    with warehouse.connect(data) as con:
        con.execute("ALTER TABLE quality.ingest_log ADD COLUMN note VARCHAR")
    for _ in range(2):  # neither copy has the column yet
        pub = warehouse.publish(data)
        assert pub.method == "full copy" and "tables were added or changed" in pub.detail
        assert_published(data)
    assert warehouse.publish(data).method == "incremental"

    with warehouse.connect(data) as con:  # a write that bypasses transaction(writes=...): caught by the row counts
        con.execute("DELETE FROM raw.inference_events WHERE request_id = ?", [f"r{D1}-0"])
    pub = warehouse.publish(data)
    assert pub.method == "full copy" and "raw.inference_events changed outside the change log" in pub.detail
    assert_published(data)


def test_a_large_change_is_copied_in_full_as_that_is_cheaper(data, monkeypatch):
    monkeypatch.delenv("AISO_PUBLISH_INCREMENTAL_SHARE")
    load(data, D1, 400)
    load(data, D2, 5)
    warehouse.publish(data)
    warehouse.publish(data)
    load(data, D2, 6, prefix="again")  # 7 rows to copy of ~410: in place
    small = warehouse.publish(data)
    assert small.method == "incremental" and small.rows == 6 + 1
    load(data, D1, 380, prefix="again")  # the other copy needs both days: most of the warehouse
    large = warehouse.publish(data)
    assert large.method == "full copy" and "a full copy is cheaper" in large.detail
    assert_published(data)


def test_whole_table_writes_are_copied_whole(data):
    """What the key-hash refill declares: (table, None)."""
    load(data, D1, 5)
    load(data, D2, 5)
    warehouse.publish(data)
    warehouse.publish(data)
    with warehouse.connect(data) as con:
        with warehouse.transaction(con, writes=[("raw.inference_events", None), ("raw.inference_events", D1)]):
            con.execute("UPDATE raw.inference_events SET output_tokens = 42")
    pub = warehouse.publish(data)
    assert pub.method == "incremental" and pub.partitions == (("raw.inference_events", None),) and pub.rows == 10
    assert_published(data)


def test_a_rebuilt_working_database_is_copied_in_full(data):
    """Its change log restarts from 1: the published copies' seq means nothing to it."""
    load(data, D1, 5)
    warehouse.publish(data)
    warehouse.publish(data)
    data.work_db.unlink()
    load(data, D2, 3)
    pub = warehouse.publish(data)
    assert pub.method == "full copy" and "another working database" in pub.detail
    assert_published(data)
    assert len(published(data)["raw.inference_events"]) == 3


def test_the_change_log_keeps_only_what_a_copy_still_needs(data):
    for i, dt in enumerate((D1, D2, D3, D4)):
        load(data, dt, 2 + i)
        warehouse.publish(data)
    # the older copy holds everything up to D3's ingest: only D4's rows are still needed
    logged = query(data, "SELECT DISTINCT table_name, CAST(dt AS VARCHAR) FROM meta.partition_writes")
    assert set(logged) == {(t, D4) for t in INGEST_TABLES}
    warehouse.publish(data)  # both copies hold everything now
    assert query(data, "SELECT count(*) FROM meta.partition_writes") == [(0,)]
    assert_published(data)


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


def test_a_bad_share_setting_is_one_clear_error(data, monkeypatch):
    load(data, D1, 1)
    monkeypatch.setenv("AISO_PUBLISH_INCREMENTAL_SHARE", "5%")
    with pytest.raises(AisoError, match="AISO_PUBLISH_INCREMENTAL_SHARE must be a number from 0 to 1, not '5%'"):
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
    assert pub.method == "incremental"
    assert {t for t, _ in pub.partitions} >= {"raw.product_events", "marts.joined_outcomes", "marts.cost_daily",
                                             "marts.outcome_coverage", "quality.check_results"}
    assert_published(data)
    tables = published(data)
    assert tables["marts.joined_outcomes"] and tables["marts.cost_daily"] and tables["raw.product_events"]
