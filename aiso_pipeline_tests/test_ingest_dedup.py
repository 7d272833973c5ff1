"""Dedup within and across partitions, idempotent reruns, and late files re-opening a past partition."""
from aiso_pipeline_tests.conftest import inference, ingest, land, product, query

TABLES = ["raw.inference_events", "raw.product_events", "quality.quarantine", "quality.ingest_log"]


def snapshot(data):
    return {t: sorted(query(data, f"SELECT * EXCLUDE ({'loaded_at' if t.startswith('raw') or t.endswith('log') else 'quarantined_at'}) FROM {t}"), key=str)
            for t in TABLES}


def test_duplicate_within_file_and_across_files_counted_once(data):
    land(data, "product", "2025-06-01", "a.jsonl", [product("m1"), product("m1"), product("m2")])
    land(data, "product", "2025-06-01", "b.jsonl", [product("m2"), product("m3")])
    s = ingest(data, "product", "2025-06-01")
    assert (s.rows_read, s.rows_loaded, s.rows_duplicate) == (5, 3, 2)
    # the first occurrence (by file name, then line) is the one loaded
    assert query(data, "SELECT message_id, source_file, line_number FROM raw.product_events ORDER BY 1") == [
        ("m1", "landing/product/dt=2025-06-01/a.jsonl", 1),
        ("m2", "landing/product/dt=2025-06-01/a.jsonl", 3),
        ("m3", "landing/product/dt=2025-06-01/b.jsonl", 2)]


def test_duplicate_of_an_earlier_partition_is_not_loaded_again(data):
    land(data, "inference", "2025-06-01", "a.jsonl", [inference("r1"), inference("r2")])
    land(data, "inference", "2025-06-02", "a.jsonl", [inference("r2", timestamp="2025-06-02T00:10:00Z"),
                                                      inference("r3", timestamp="2025-06-02T00:10:00Z")])
    ingest(data, "inference", "2025-06-01")
    s = ingest(data, "inference", "2025-06-02")
    assert (s.rows_loaded, s.rows_duplicate) == (1, 1)
    assert query(data, "SELECT request_id, dt::VARCHAR FROM raw.inference_events ORDER BY 1") == [
        ("r1", "2025-06-01"), ("r2", "2025-06-01"), ("r3", "2025-06-02")]
    # rerunning the earlier day keeps r2 where it was: the result does not depend on run order
    ingest(data, "inference", "2025-06-01")
    assert query(data, "SELECT count(*), count(DISTINCT request_id) FROM raw.inference_events") == [(3, 3)]


def test_rerun_is_idempotent(data):
    land(data, "inference", "2025-06-01", "a.jsonl", [inference("r1"), inference("r1"), "broken", inference("r2")])
    land(data, "product", "2025-06-01", "p.jsonl", [product("m1"), {"bad": 1}])
    for stream in ("inference", "product"):
        ingest(data, stream, "2025-06-01")
    first = snapshot(data)
    for stream in ("inference", "product"):
        ingest(data, stream, "2025-06-01")
    assert snapshot(data) == first
    assert query(data, "SELECT count(*) FROM quality.ingest_log") == [(2,)]


def test_late_file_in_past_partition_is_picked_up_by_rerun(data):
    land(data, "inference", "2025-06-01", "a.jsonl", [inference("r1")])
    land(data, "inference", "2025-06-02", "a.jsonl", [inference("r9", timestamp="2025-06-02T08:00:00Z")])
    ingest(data, "inference", "2025-06-01")
    ingest(data, "inference", "2025-06-02")
    land(data, "inference", "2025-06-01", "late.jsonl.gz", [inference("r2"), inference("r1")])
    s = ingest(data, "inference", "2025-06-01")
    assert (s.files, s.rows_loaded, s.rows_duplicate) == (2, 2, 1)
    assert query(data, "SELECT dt::VARCHAR, count(*) FROM raw.inference_events GROUP BY 1 ORDER BY 1") == [
        ("2025-06-01", 2), ("2025-06-02", 1)]


def test_failed_write_leaves_previous_partition_intact(data, monkeypatch):
    from aiso_pipeline import warehouse
    land(data, "inference", "2025-06-01", "a.jsonl", [inference("r1")])
    ingest(data, "inference", "2025-06-01")
    before = snapshot(data)
    land(data, "inference", "2025-06-01", "b.jsonl", [inference("r2")])
    real_run = warehouse.run

    def failing_run(con, name, **params):
        if name.endswith("quality_write.sql"):
            raise RuntimeError("disk full")
        return real_run(con, name, **params)

    monkeypatch.setattr(warehouse, "run", failing_run)
    try:
        ingest(data, "inference", "2025-06-01")
    except RuntimeError:
        pass
    monkeypatch.setattr(warehouse, "run", real_run)
    assert snapshot(data) == before


def test_dedup_across_days_survives_a_refill_of_the_key_hashes(data):
    """Dedup reads a stored hash of each key: a database written before that column existed (or by a DuckDB whose
    hash() differs) has it refilled on connect, so earlier partitions still count."""
    land(data, "inference", "2025-06-01", "a.jsonl", [inference("r1"), inference("r2")])
    land(data, "product", "2025-06-01", "a.jsonl", [product("m1")])
    ingest(data, "inference", "2025-06-01")
    ingest(data, "product", "2025-06-01")
    query(data, "UPDATE raw.inference_events SET key_hash = NULL")  # as an older version left it
    query(data, "UPDATE raw.product_events SET key_hash = 42")  # as a DuckDB with another hash() left it
    query(data, "UPDATE meta.key_hash SET probe = 42")
    land(data, "inference", "2025-06-02", "a.jsonl", [inference("r2", timestamp="2025-06-02T00:10:00Z"),
                                                      inference("r3", timestamp="2025-06-02T00:10:00Z")])
    land(data, "product", "2025-06-02", "a.jsonl", [product("m1"), product("m2")])
    assert (ingest(data, "inference", "2025-06-02").rows_duplicate, ingest(data, "product", "2025-06-02").rows_duplicate) == (1, 1)
    assert query(data, "SELECT count(*) FROM raw.inference_events WHERE key_hash IS DISTINCT FROM hash(request_id)") == [(0,)]
