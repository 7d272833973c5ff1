"""Bad input is quarantined with its reason and counted, never dropped, and never stops the rest of the file."""
import gzip

import pytest

from aiso_pipeline_tests.conftest import inference, ingest, land, product, query

DT = "2025-06-01"
GOOD = inference("good")

INFERENCE_CASES = [
    ('{"request_id": "x", "model": ', "unparseable: invalid JSON"),
    ("[1, 2, 3]", "unparseable: not a JSON object"),
    ({"timestamp": "2025-06-01T10:00:00Z", "model": "gpt-4o"}, "missing_required_key: request_id"),
    ({"request_id": "x", "model": "gpt-4o"}, "missing_required_key: timestamp"),
    ({"request_id": "x", "timestamp": "2025-06-01T10:00:00Z"}, "missing_required_key: model"),
    (inference("x", timestamp="yesterday"), "unparseable_timestamp: timestamp"),
    (inference("x", timestamp="2025-06-01T10:00:00"), "unparseable_timestamp: timestamp"),  # no offset
    (inference("x", timestamp="9999999999999999"), "out_of_range: timestamp"),  # epoch µs: the year 2286
    (inference("x", input_tokens="abc"), "invalid_type: input_tokens"),
    (inference("x", input_tokens=-5), "out_of_range: input_tokens"),
    (inference("x", input_tokens=12.5), "out_of_range: input_tokens"),
    (inference("x", output_tokens=10**30), "out_of_range: output_tokens"),
    (inference("x", input_tokens=10, cached_input_tokens=11), "out_of_range: cached_input_tokens > input_tokens"),
    (inference("x", latency_ms="fast"), "invalid_type: latency_ms"),
    (inference("x", latency_ms=-1), "out_of_range: latency_ms"),
    (inference("x", status="weird"), "out_of_range: status"),
    (inference("x", is_fallback="maybe"), "invalid_type: is_fallback"),
    (inference("x", confidence="high"), "invalid_type: confidence"),
    (inference("x", confidence=1.7), "out_of_range: confidence"),
    (inference("x", cost_usd=-0.1), "out_of_range: cost_usd"),
    (inference("x", cost_usd="1e400"), "out_of_range: cost_usd"),
    (inference("x", sample_rate=0), "out_of_range: sample_rate"),
    (inference("x", sample_rate=1.5), "out_of_range: sample_rate"),
    (inference("x", features=["a"]), "invalid_type: features"),
    (inference("x", features={"nested": {"a": 1}}), "invalid_type: features"),
]


@pytest.mark.parametrize("bad,reason", INFERENCE_CASES, ids=[c[1] + str(i) for i, c in enumerate(INFERENCE_CASES)])
def test_inference_row_quarantined_with_reason(data, bad, reason):
    land(data, "inference", DT, "a.jsonl", [GOOD, bad, inference("also_good")])
    s = ingest(data, "inference", DT)
    assert (s.rows_read, s.rows_loaded, s.rows_duplicate, s.rows_quarantined) == (3, 2, 0, 1)
    (src, line, got, payload), = query(data, "SELECT source_file, line_number, reason, payload FROM quality.quarantine")
    assert (src, line, got) == (f"landing/inference/dt={DT}/a.jsonl", 2, reason)
    assert payload and payload.startswith(("{", "["))


PRODUCT_CASES = [
    ({"event": "Order Completed", "timestamp": "2025-06-01T11:00:00Z", "user_id": "u"}, "missing_required_key: message_id"),
    ({"message_id": "x", "timestamp": "2025-06-01T11:00:00Z", "user_id": "u"}, "missing_required_key: event"),
    ({"message_id": "x", "event": "E", "user_id": "u"}, "missing_required_key: timestamp"),
    ({"message_id": "x", "event": "E", "timestamp": "2025-06-01T11:00:00Z"}, "missing_required_key: user_id or anonymous_id"),
    (product("x", timestamp="not a time"), "unparseable_timestamp: timestamp"),
    (product("x", properties="oops"), "invalid_type: properties"),
    (product("x", properties={"revenue": "lots"}), "invalid_type: properties.revenue"),
]


@pytest.mark.parametrize("bad,reason", PRODUCT_CASES, ids=[c[1] for c in PRODUCT_CASES])
def test_product_row_quarantined_with_reason(data, bad, reason):
    land(data, "product", DT, "p.jsonl", [product("m1"), bad])
    s = ingest(data, "product", DT)
    assert (s.rows_loaded, s.rows_quarantined) == (1, 1)
    assert query(data, "SELECT line_number, reason FROM quality.quarantine") == [(2, reason)]


def test_injection_like_ids_load_verbatim(data):
    evil = "x'; DROP TABLE raw.inference_events; --"
    land(data, "inference", DT, "a.jsonl", [inference(evil, experiment_id='exp"); DELETE FROM x; --')])
    assert ingest(data, "inference", DT).rows_loaded == 1
    assert query(data, "SELECT request_id FROM raw.inference_events") == [(evil,)]


def test_blank_lines_are_not_rows_and_line_numbers_stay_physical(data):
    land(data, "inference", DT, "a.jsonl", [GOOD, "", "   ", "not json"])
    s = ingest(data, "inference", DT)
    assert (s.rows_read, s.rows_loaded, s.rows_quarantined) == (2, 1, 1)
    assert query(data, "SELECT line_number FROM quality.quarantine") == [(4,)]


def _whole_file(data, name: str, content: bytes):
    path = data.partition_dir("inference", DT) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


@pytest.mark.parametrize("name,content,reason", [
    ("empty.jsonl", b"", "empty_file"),
    ("blank.jsonl", b"\n\n", "empty_file"),
    ("empty.jsonl.gz", gzip.compress(b""), "empty_file"),
    ("truncated.jsonl.gz", gzip.compress(b'{"request_id": "t"}\n' * 5000)[:300], "unreadable_file"),
    ("garbage.jsonl", bytes(range(256)) * 4, "binary_file"),
    ("garbage.parquet", b"PAR1 this is not parquet", "unreadable_file"),  # told by its bytes, not its name
    ("notes.parquet", b"this is not parquet", "unsupported_format"),
    ("notes.txt", b"hello", "unsupported_format"),
])
def test_unreadable_file_quarantined_whole_and_others_still_load(data, name, content, reason):
    land(data, "inference", DT, "good.jsonl", [GOOD])
    _whole_file(data, name, content)
    s = ingest(data, "inference", DT)
    assert (s.files, s.files_quarantined, s.rows_loaded) == (2, 1, 1)
    (line, got), = query(data, "SELECT line_number, reason FROM quality.quarantine")
    assert line is None and got.startswith(reason)
    log = query(data, "SELECT rows_read, rows_loaded, rows_quarantined, file_error FROM quality.ingest_log "
                      "WHERE source_file LIKE ?", [f"%{name}"])
    assert log[0][:3] == (0, 0, 0) and log[0][3].startswith(reason)


def test_hidden_and_marker_files_are_ignored(data):
    land(data, "inference", DT, "good.jsonl", [GOOD])
    _whole_file(data, "_SUCCESS", b"")
    _whole_file(data, ".DS_Store", b"\x00\x01")
    assert ingest(data, "inference", DT).files == 1


def test_accounting_identity_holds_for_every_file(data):
    land(data, "inference", DT, "a.jsonl", [GOOD, GOOD, "broken", inference("b", confidence=3)])
    land(data, "inference", DT, "b.jsonl.gz", [inference("b"), GOOD, inference("c")])
    ingest(data, "inference", DT)
    log = query(data, """SELECT source_file, rows_read, rows_loaded, rows_duplicate, rows_quarantined
                         FROM quality.ingest_log ORDER BY source_file""")
    assert [r[1:] for r in log] == [(4, 1, 1, 2), (3, 2, 1, 0)]
    assert query(data, "SELECT count(*) FROM raw.inference_events") == [(3,)]
