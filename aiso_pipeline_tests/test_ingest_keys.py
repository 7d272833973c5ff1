"""Every key alias of CONTRACT sections 2-3 lands in its canonical column; unknown keys land in attributes."""
import json

import duckdb
import pytest

from aiso_pipeline_tests.conftest import inference, ingest, land, product, query

DT = "2025-06-01"

INFERENCE_ALIASES = [
    ("request_id", "gen_ai.response.id", "abc", "abc"),
    ("model", "gen_ai.request.model", "gpt-4o", "gpt-4o"),
    ("model", "llm.model_name", "gpt-4o", "gpt-4o"),
    ("model_version", "gen_ai.response.model", "gpt-4o-2024-08-06", "gpt-4o-2024-08-06"),
    ("provider", "gen_ai.provider.name", "openai", "openai"),
    ("provider", "gen_ai.system", "openai", "openai"),
    ("operation", "gen_ai.operation.name", "embeddings", "embeddings"),
    ("feature", "channel", "search", "search"),
    ("user_id", "user.id", "u9", "u9"),
    ("session_id", "session.id", "s9", "s9"),
    ("session_id", "gen_ai.conversation.id", "s9", "s9"),
    ("input_tokens", "gen_ai.usage.input_tokens", 120, 120),
    ("input_tokens", "gen_ai.usage.prompt_tokens", 120, 120),
    ("input_tokens", "llm.token_count.prompt", 120, 120),
    ("output_tokens", "gen_ai.usage.output_tokens", 30, 30),
    ("output_tokens", "gen_ai.usage.completion_tokens", 30, 30),
    ("output_tokens", "llm.token_count.completion", 30, 30),
    ("cached_input_tokens", "gen_ai.usage.cache_read.input_tokens", 5, 5),
    ("latency_ms", "latency_s", 1.25, 1250.0),
    ("error_type", "error.type", "RateLimitError", "RateLimitError"),
]


@pytest.mark.parametrize("column,alias,value,expected", INFERENCE_ALIASES, ids=[a[1] for a in INFERENCE_ALIASES])
def test_inference_alias(data, column, alias, value, expected):
    row = inference(input_tokens=200)
    if column in row:
        del row[column]
    row[alias] = value
    land(data, "inference", DT, "a.jsonl", [row])
    s = ingest(data, "inference", DT)
    assert (s.rows_loaded, s.rows_quarantined) == (1, 0), s.quarantine_reasons
    assert query(data, f'SELECT {column} FROM raw.inference_events')[0][0] == expected


def test_timestamp_forms(data):
    land(data, "inference", DT, "a.jsonl", [
        inference("iso_z", timestamp="2025-06-01T10:00:00Z"),
        inference("iso_offset", timestamp="2025-06-01T12:00:00+02:00"),
        inference("epoch_ms", timestamp=1748772000000),
        {"request_id": "start_time", "start_time": "2025-06-01T10:00:00.000Z", "model": "gpt-4o"},
    ])
    ingest(data, "inference", DT)
    rows = query(data, "SELECT request_id, epoch_ms(\"timestamp\") FROM raw.inference_events ORDER BY 1")
    assert {r[1] for r in rows} == {1748772000000}
    assert len(rows) == 4


def test_defaults_and_derived_status(data):
    land(data, "inference", DT, "a.jsonl", [inference("plain"), inference("failed", error_type="Timeout")])
    ingest(data, "inference", DT)
    rows = dict((r[0], r[1:]) for r in query(data, """SELECT request_id, operation, feature, input_tokens,
        output_tokens, cached_input_tokens, status, is_fallback, sample_rate FROM raw.inference_events"""))
    # token counts not reported are NULL (CONTRACT section 2), never 0: the call is unpriced, not free
    assert rows["plain"] == ("chat", "default", None, None, 0, "ok", False, 1.0)
    assert rows["failed"][5] == "error"


def test_unknown_keys_kept_in_attributes(data):
    land(data, "inference", DT, "a.jsonl", [inference(region="eu-west", app={"version": "1.2"}, features={"lang": "de"})])
    ingest(data, "inference", DT)
    attributes, features = query(data, "SELECT attributes, features FROM raw.inference_events")[0]
    assert json.loads(attributes) == {"region": "eu-west", "app": {"version": "1.2"}}
    assert json.loads(features) == {"lang": "de"}


@pytest.mark.parametrize("key_style", ["camel", "snake"])
def test_product_keys(data, key_style):
    if key_style == "camel":
        row = {"messageId": "m1", "event": "Order Completed", "timestamp": "2025-06-01T11:00:00Z",
               "userId": "u1", "anonymousId": "a1", "sessionId": "s1", "requestId": "r1",
               "properties": {"revenue": 19.5}, "context": {"ip": "10.0.0.1"}}
    else:
        row = {"message_id": "m1", "event": "Order Completed", "timestamp": "2025-06-01T11:00:00Z",
               "user_id": "u1", "anonymous_id": "a1", "session_id": "s1",
               "properties": {"request_id": "r1", "revenue": 19.5}, "context": {"ip": "10.0.0.1"}}
    land(data, "product", DT, "p.jsonl", [row])
    assert ingest(data, "product", DT).rows_loaded == 1
    got = query(data, """SELECT message_id, event, user_id, anonymous_id, session_id, request_id, revenue, attributes
                         FROM raw.product_events""")[0]
    assert got[:7] == ("m1", "Order Completed", "u1", "a1", "s1", "r1", 19.5)
    assert json.loads(got[7]) == {"context": {"ip": "10.0.0.1"}}


ROWS = [inference("r1", input_tokens=100, output_tokens=10, features={"lang": "en", "n": 2}, region="eu"),
        inference("r2", model="claude-3-5-sonnet-20241022", latency_ms=850.5, confidence=0.4, is_fallback=True)]


def _write_format(data, fmt: str):
    folder = data.partition_dir("inference", DT)
    folder.mkdir(parents=True)
    con = duckdb.connect()
    # Flat rows for CSV (nested objects as JSON text, as exports do); nested for Parquet.
    con.execute("CREATE TABLE t AS SELECT * FROM read_json(?, format='newline_delimited', hive_partitioning=false)",
                [str(land(data, "inference", "tmp", "rows.jsonl", ROWS))])
    if fmt == "parquet":
        con.execute(f"COPY t TO '{folder / 'a.parquet'}' (FORMAT parquet)")
    else:
        con.execute(f"COPY (SELECT * REPLACE (to_json(features)::VARCHAR AS features) FROM t) "
                    f"TO '{folder / 'a.csv'}' (FORMAT csv, HEADER)")


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz", "parquet", "csv"])
def test_every_format_loads_the_same_rows(data, fmt):
    if fmt in ("jsonl", "jsonl.gz"):
        land(data, "inference", DT, f"a.{fmt}", ROWS)
    else:
        _write_format(data, fmt)
    s = ingest(data, "inference", DT)
    assert (s.rows_read, s.rows_loaded, s.rows_quarantined) == (2, 2, 0), s.quarantine_reasons
    rows = query(data, """SELECT request_id, model, input_tokens, output_tokens, latency_ms, confidence, is_fallback,
                                 features->>'$.lang', (features->>'$.n')::INT, attributes->>'$.region'
                          FROM raw.inference_events ORDER BY request_id""")
    assert rows == [("r1", "gpt-4o", 100, 10, None, None, False, "en", 2, "eu"),
                    ("r2", "claude-3-5-sonnet-20241022", None, None, 850.5, 0.4, True, None, None, None)]
    # nothing leaks in from the reader (e.g. a `dt` column from the dt= folder name)
    assert query(data, "SELECT json_keys(attributes) FROM raw.inference_events WHERE request_id = 'r1'") == [(["region"],)]
