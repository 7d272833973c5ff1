"""Every supported source loads as its tool exports it (CONTRACT sections 2-4): fixtures written from each tool's
documented schema (aiso_pipeline_tests/fixtures/sources/<tool>/NOTES.md cites the specs and source files), each with
an expected.json worked out by hand from the fixture and the shipped price table."""
import gzip
import json
import math
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from aiso_pipeline.config import DEFAULT_PRICES
from aiso_pipeline.ingest import sources
from aiso_pipeline_tests.conftest import ingest, query

FIXTURES = Path(__file__).parent / "fixtures" / "sources"
DT = "2026-03-10"

INFERENCE_FIXTURES = [
    ("otlp", "traces.json", "otlp"),
    ("otlp", "flattened_spans.jsonl", "span_json"),
    ("phoenix", "spans.jsonl", "phoenix"),
    ("phoenix", "spans.parquet", "phoenix"),
    ("phoenix", "spans_pandas3.parquet", "phoenix"),
    ("litellm", "standard_logging.jsonl", "litellm"),
    ("langfuse", "observations.jsonl", "langfuse"),
    ("langfuse", "observations_api_v1.jsonl", "langfuse"),
]
PRODUCT_FIXTURES = [
    ("segment", "1773154800000.7c1f0a2b9e.gz"),
    ("rudderstack", "1773154800.2Uc6tLmMFkrQ9wyXa4eS7yGVnFd.5f1c2f0e-8a7b-4c49-9f3d-1b2a3c4d5e6f.json.gz"),
]
COLUMNS = ["request_id", "timestamp", "model", "provider", "user_id", "session_id", "input_tokens", "output_tokens",
           "cached_input_tokens", "latency_ms", "status", "error_type", "cost_usd"]


def expected(tool: str, name: str) -> dict:
    return json.loads((FIXTURES / tool / "expected.json").read_text())[name]


def land_fixture(data, stream: str, tool: str, name: str, as_name: str | None = None) -> Path:
    target = data.partition_dir(stream, DT) / (as_name or name)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FIXTURES / tool / name, target)
    return target


@pytest.fixture
def priced(data):
    """The data directory with the shipped price table (the fixtures' costs were worked out from it)."""
    shutil.copyfile(DEFAULT_PRICES, data.prices)
    return data


def _later(iso: str, seconds: float) -> int:
    """Epoch milliseconds `seconds` after an ISO timestamp (Segment exports carry ISO; epoch ms is accepted too)."""
    return round((datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() + seconds) * 1000)


def _iso(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def loaded_inferences(data) -> dict[str, dict]:
    rows = query(data, f"SELECT {', '.join(COLUMNS)} FROM raw.inference_events")
    return {r[0]: dict(zip(COLUMNS, r)) | {"timestamp": _iso(r[1])} for r in rows}


def assert_row(got: dict, want: dict) -> None:
    for key in COLUMNS:
        if key not in want:
            continue
        g, w = got[key], want[key]
        if isinstance(w, float) and g is not None:
            assert math.isclose(g, w, rel_tol=1e-9, abs_tol=1e-3 if key == "latency_ms" else 1e-12), (key, got, want)
        else:
            assert g == w, (key, got, want)


@pytest.mark.parametrize("tool,name,source", INFERENCE_FIXTURES, ids=[f"{t}/{n}" for t, n, _ in INFERENCE_FIXTURES])
def test_inference_source_loads_every_call_as_exported(priced, tool, name, source):
    want = expected(tool, name)
    land_fixture(priced, "inference", tool, name)
    s = ingest(priced, "inference", DT)
    assert s.sources == {f"landing/inference/dt={DT}/{name}": source}
    assert (s.rows_read, s.rows_loaded, s.rows_skipped, s.rows_quarantined) == (
        want["rows_read"], len(want["rows"]), want["skipped"], 0), s.quarantine_reasons
    got = loaded_inferences(priced)
    assert set(got) == {r["request_id"] for r in want["rows"]}
    for row in want["rows"]:
        assert_row(got[row["request_id"]], row)
    # every row is priced by a reported cost or the price table, or counted as unpriced: never $0 by default
    unpriced = [r for r in want["rows"] if r.get("cost_usd") is None]
    assert s.rows_unpriced == len(unpriced)


def test_langfuse_traces_export_gives_each_observation_its_user_and_session(priced):
    """The observations export carries no user or session; the traces export beside it does (trace_id -> id)."""
    land_fixture(priced, "inference", "langfuse", "observations.jsonl")
    land_fixture(priced, "inference", "langfuse", "traces.jsonl")
    s = ingest(priced, "inference", DT)
    traces = {t["id"]: t for t in map(json.loads, (FIXTURES / "langfuse" / "traces.jsonl").read_text().splitlines())}
    observations = {o["id"]: o for o in map(json.loads,
                                            (FIXTURES / "langfuse" / "observations.jsonl").read_text().splitlines())}
    got = loaded_inferences(priced)
    assert s.rows_skipped == expected("langfuse", "observations.jsonl")["skipped"] + len(traces)
    assert got and all(
        (row["user_id"], row["session_id"]) == (traces[observations[rid]["trace_id"]]["user_id"],
                                                 traces[observations[rid]["trace_id"]]["session_id"])
        for rid, row in got.items())


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_otlp_compressed_and_named_anything(priced, compression):
    raw = (FIXTURES / "otlp" / "traces.json").read_bytes()
    target = priced.partition_dir("inference", DT) / "otel-export"  # no extension: told by its bytes
    target.parent.mkdir(parents=True)
    if compression == "gzip":
        target.write_bytes(gzip.compress(raw))
    else:
        plain = target.with_name("plain.tmp")
        plain.write_bytes(raw)
        subprocess.run(["zstd", "-q", "--rm", str(plain), "-o", str(target)], check=True)
    s = ingest(priced, "inference", DT)
    want = expected("otlp", "traces.json")
    assert (s.rows_read, s.rows_loaded, s.rows_skipped) == (want["rows_read"], len(want["rows"]), want["skipped"])
    assert query(priced, "SELECT file_format FROM quality.ingest_log") == [(f"jsonl+{compression}",)]


@pytest.mark.parametrize("tool,name", PRODUCT_FIXTURES, ids=[t for t, _ in PRODUCT_FIXTURES])
def test_segment_and_rudderstack_exports_load_track_calls_and_count_the_rest(data, tool, name):
    want = expected(tool, name)
    land_fixture(data, "product", tool, name)
    s = ingest(data, "product", DT)
    skipped = want["skipped"]
    assert (s.rows_read, s.rows_loaded, s.rows_skipped, s.rows_quarantined) == (
        want["rows_read"], len(want["rows"]), sum(skipped.values()), 0)
    (reasons,), = query(data, "SELECT skip_reasons FROM quality.ingest_log")
    assert json.loads(reasons) == skipped
    got = {r[0]: r for r in query(data, """SELECT message_id, event, "timestamp", user_id, anonymous_id, session_id,
                                                  request_id, revenue FROM raw.product_events""")}
    for row in want["rows"]:
        m = got[row["message_id"]]
        assert (m[1], _iso(m[2]), m[3], m[4], m[5], m[6], m[7]) == (
            row["event"], row["timestamp"], row["user_id"], row["anonymous_id"], row["session_id"],
            row["request_id"], row["revenue"])


def test_every_declaration_renders_and_every_stream_has_one_fallback():
    for source in sources.sources():
        assert source.title and source.example, source.name
    for stream in ("inference", "product"):
        assert sources.fallback(stream).recognize is None


@pytest.mark.parametrize("source", [s.name for s in sources.sources()])
def test_each_declarations_readme_example_loads_as_that_source(priced, source):
    """The example line the README shows for each source is real: it is recognized as that source and loads."""
    declared = sources.by_name(source)
    target = priced.partition_dir(declared.stream, DT) / "example"
    target.parent.mkdir(parents=True)
    target.write_text(declared.example + "\n")
    s = ingest(priced, declared.stream, DT)
    assert s.sources == {f"landing/{declared.stream}/dt={DT}/example": source}
    assert (s.rows_read, s.rows_loaded, s.rows_quarantined) == (1, 1, 0), s.quarantine_reasons


def test_readme_table_of_sources_is_generated_from_the_declarations():
    from aiso_pipeline.ingest.sources import docs
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert docs.section() in readme, "run: .venv/bin/python -m aiso_pipeline.ingest.sources.docs README.md"


def _otlp_line(*spans, resource=None) -> dict:
    return {"resourceSpans": [{"resource": {"attributes": resource or []},
                               "scopeSpans": [{"scope": {"name": "test"}, "spans": list(spans)}]}]}


def _span(span_id: str, **attrs) -> dict:
    kv = [{"key": k, "value": v if isinstance(v, dict) else {"stringValue": v} if isinstance(v, str)
           else {"intValue": str(v)}} for k, v in attrs.items()]
    return {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": span_id, "name": "chat", "kind": 3,
            "startTimeUnixNano": "1773133200000000000", "endTimeUnixNano": "1773133200500000000",
            "attributes": kv, "status": {}}


CALL = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.output_tokens": 10}


def test_malformed_otlp_quarantines_only_its_spans_with_reasons(priced):
    good = json.dumps(_otlp_line(_span("a000000000000001", **CALL), _span("a000000000000002", **CALL)))
    lines = [
        good,
        good[: len(good) // 2],  # truncated: the whole line is one quarantined row
        json.dumps(_otlp_line(
            _span("b000000000000001", **{**CALL, "gen_ai.usage.input_tokens": {"stringValue": "many"}}),  # bad value
            {k: v for k, v in _span("b000000000000002", **CALL).items() if k != "spanId"},  # no ids at all
            "not a span",
            _span("b000000000000003", **CALL))),
        json.dumps({"resourceSpans": {"oops": 1}}),
    ]
    target = priced.partition_dir("inference", DT) / "traces.json"
    target.parent.mkdir(parents=True)
    target.write_text("\n".join(lines) + "\n")
    s = ingest(priced, "inference", DT)
    assert (s.rows_read, s.rows_loaded, s.rows_quarantined) == (2 + 1 + 4 + 1, 3, 5)
    got = query(priced, "SELECT line_number, record_number, reason FROM quality.quarantine ORDER BY 1, 2")
    assert got == [
        (2, 1, "unparseable: invalid JSON"),
        (3, 1, "invalid_type: input_tokens"),
        (3, 2, "missing_required_key: request_id"),
        (3, 3, "unparseable: not a JSON object"),
        (4, 1, "unparseable: resourceSpans is not an array"),
    ]
    assert {r[0] for r in query(priced, "SELECT request_id FROM raw.inference_events")} == {
        "a000000000000001", "a000000000000002", "b000000000000003"}


def test_a_row_reason_names_every_problem(data):
    from aiso_pipeline_tests.conftest import land
    land(data, "inference", "2025-06-01", "a.jsonl", [
        {"timestamp": "soon", "model": "gpt-4o", "input_tokens": -1, "confidence": 2, "status": "weird"}])
    ingest(data, "inference", "2025-06-01")
    assert query(data, "SELECT reason FROM quality.quarantine") == [(
        "missing_required_key: request_id; unparseable_timestamp: timestamp; out_of_range: input_tokens; "
        "out_of_range: status; out_of_range: confidence",)]


@pytest.mark.parametrize("raw,expected", [
    (1773133200, "2026-03-10T09:00:00.000000Z"),             # epoch seconds
    (1773133200.25, "2026-03-10T09:00:00.250000Z"),
    (1773133200123, "2026-03-10T09:00:00.123000Z"),          # milliseconds
    (1773133200123456, "2026-03-10T09:00:00.123456Z"),       # microseconds
    ("1773133200123456789", "2026-03-10T09:00:00.123456Z"),  # nanoseconds (OTLP writes them as strings)
    ("2026-03-10T10:00:00+01:00", "2026-03-10T09:00:00.000000Z"),
])
def test_epoch_timestamps_are_told_apart_by_magnitude(data, raw, expected):
    from aiso_pipeline_tests.conftest import inference, land
    land(data, "inference", DT, "a.jsonl", [inference("r", timestamp=raw)])
    s = ingest(data, "inference", DT)
    assert s.rows_loaded == 1, s.quarantine_reasons
    assert _iso(query(data, 'SELECT "timestamp" FROM raw.inference_events')[0][0]) == expected


def test_timestamps_without_a_zone_need_the_data_directorys_setting(data):
    from aiso_pipeline_tests.conftest import inference, land
    land(data, "inference", DT, "a.jsonl", [inference("r", timestamp="2026-03-10 10:00:00")])
    assert ingest(data, "inference", DT).quarantine_reasons == {"unparseable_timestamp: timestamp": 1}
    (data.reference / "ingest.yaml").write_text("naive_timestamps_timezone: Europe/Berlin\n")
    assert ingest(data, "inference", DT).rows_loaded == 1
    assert _iso(query(data, 'SELECT "timestamp" FROM raw.inference_events')[0][0]) == "2026-03-10T09:00:00.000000Z"


def test_a_naive_parquet_timestamp_is_utc(data):
    import duckdb
    folder = data.partition_dir("inference", DT)
    folder.mkdir(parents=True)
    duckdb.connect().execute(f"""COPY (SELECT 'r1' AS request_id, TIMESTAMP '2026-03-10 09:00:00' AS "timestamp",
                                 'gpt-4o' AS model, {{'prompt_tokens': 5}} AS usage)
                                 TO '{folder / "calls.parquet"}' (FORMAT parquet)""")
    s = ingest(data, "inference", DT)
    assert s.rows_loaded == 1, s.quarantine_reasons
    ts, attributes = query(data, 'SELECT "timestamp", attributes FROM raw.inference_events')[0]
    assert _iso(ts) == "2026-03-10T09:00:00.000000Z"
    assert json.loads(attributes) == {"usage": {"prompt_tokens": 5}}  # a nested struct stays nested


def test_calls_from_every_source_join_their_outcomes(priced):
    """The nightly run over every source at once: each call that a product event names (by request_id) or follows
    (same user, last touch) has its outcome; conversions carry their revenue."""
    from aiso_pipeline.runner import run_days
    from aiso_pipeline_tests.conftest import land

    landed = [(t, n) for t, n, _ in INFERENCE_FIXTURES if n not in ("spans_pandas3.parquet",
                                                                     "observations_api_v1.jsonl")]
    calls = []
    for tool, name in landed:
        land_fixture(priced, "inference", tool, name)
        calls += expected(tool, name)["rows"]
    named = [c for c in calls if c["status"] == "ok"][::2]  # every other good call gets an answer accepted
    events = [{"messageId": f"m-{c['request_id']}", "type": "track", "event": "Answer Accepted",
               "userId": c.get("user_id") or "anonymous", "properties": {"request_id": c["request_id"]},
               "timestamp": _later(c["timestamp"], 1)} for c in named]
    # one order by a user, without a request id: it goes to that user's latest call before it (last touch)
    by_user = sorted((c for c in calls if c.get("user_id") == "u2"), key=lambda c: c["timestamp"])
    last = by_user[-1]
    events.append({"messageId": "order-1", "type": "track", "event": "Order Completed", "userId": "u2",
                   "timestamp": _later(last["timestamp"], 60), "properties": {"revenue": 42.5}})
    land(priced, "product", DT, "events.jsonl", events)
    run_days(priced, [DT])
    got = {r[0]: r[1:] for r in query(priced, """SELECT request_id, has_outcome, success, converted, revenue
                                                 FROM marts.joined_outcomes""")}
    assert set(got) == {c["request_id"] for c in calls}
    for c in named:
        assert got[c["request_id"]][:2] == (True, True), c["request_id"]
    assert got[last["request_id"]][2:] == (True, 42.5)
    joined = {rid for rid, row in got.items() if row[0]}
    assert joined == {c["request_id"] for c in named} | {last["request_id"]}


def test_usage_keys_unmapped_fires_on_unread_usage_not_on_failed_calls_or_request_parameters(data):
    """The ERROR check catches an export whose usage no declaration reads; a file whose only call failed (empty
    usage) or that carries request parameters such as max_tokens passes."""
    from aiso_pipeline.validation.engine import validate_partition
    from aiso_pipeline_tests.conftest import inference, land
    land(data, "inference", DT, "unread.jsonl", [inference("u1", usage={"prompt_tokens": 10, "completion_tokens": 2})])
    land(data, "inference", DT, "failed.jsonl", [inference("f1", error_type="Timeout", usage={},
                                                           **{"gen_ai.request.max_tokens": 512, "cost_center": "x"})])
    ingest(data, "inference", DT)
    from aiso_pipeline import warehouse
    with warehouse.connect(data) as con:
        outcome = next(o for o in validate_partition(con, data, "inference", DT) if o.check_name == "usage_keys_unmapped")
    assert (outcome.passed, outcome.observed_value) == (False, 1.0)
    assert outcome.details["files"] == [f"landing/inference/dt={DT}/unread.jsonl"]


def test_a_canonical_file_with_other_tools_keys_stays_canonical(data):
    from aiso_pipeline_tests.conftest import inference, land
    rows = [inference(f"r{i}", input_tokens=10, trace_id="t1", type="chat", start_time="2026-03-10T09:00:00Z",
                      usage_details={}) for i in range(3)]
    land(data, "inference", DT, "a.jsonl", rows)
    land(data, "product", DT, "p.jsonl", [{"message_id": "m1", "event": "Order Completed", "type": "purchase",
                                           "timestamp": "2026-03-10T09:00:00Z", "user_id": "u1"}])
    s = ingest(data, "inference", DT)
    assert (s.sources, s.rows_loaded) == ({f"landing/inference/dt={DT}/a.jsonl": "canonical"}, 3)
    assert ingest(data, "product", DT).rows_loaded == 1  # only Segment's identify/page/screen/group/alias skip


def test_ancestors_resolve_once_per_span_however_often_a_file_lands(priced):
    """The same trace delivered twice, 30 spans deep: the walk stays linear, the user comes from the root."""
    spans = [_span(f"{i:016x}", **({"user.id": "u-root"} if i == 0 else {})) for i in range(30)]
    for i, span in enumerate(spans):
        span["name"] = "step"
        if i:
            span["parentSpanId"] = f"{i - 1:016x}"
    spans[-1]["attributes"] = _span("x", **CALL)["attributes"]
    for name in ("a.json", "b.json"):
        target = priced.partition_dir("inference", DT) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(_otlp_line(*spans)) + "\n")
    s = ingest(priced, "inference", DT)
    assert (s.rows_loaded, s.rows_duplicate, s.rows_skipped) == (1, 1, 58)
    assert query(priced, "SELECT user_id FROM raw.inference_events") == [("u-root",)]


def test_cached_tokens_without_input_tokens_are_quarantined_not_priced_below_zero(data):
    from aiso_pipeline_tests.conftest import inference, land
    land(data, "inference", DT, "a.jsonl", [inference("r", cached_input_tokens=1000, output_tokens=10)])
    assert ingest(data, "inference", DT).quarantine_reasons == {
        "out_of_range: cached_input_tokens > input_tokens": 1}


def test_otlp_parts_outside_the_shape_are_quarantined_not_read_as_absent(priced):
    unwrapped = _span("c000000000000001", **CALL)
    unwrapped["attributes"][2]["value"] = 812  # gen_ai.usage.input_tokens without its {"intValue": ...}
    as_object = _span("c000000000000002")
    as_object["attributes"] = {k: v for k, v in CALL.items()}
    string_status = {**_span("c000000000000003", **CALL), "status": "ERROR"}
    http = {**_span("c000000000000004", **{"http.request.method": "GET"}), "status": "ERROR"}  # not a call: skipped
    events = _span("c000000000000005", **CALL)
    events["events"] = [{"name": "exception", "timeUnixNano": "1773133200400000000", "attributes": [
        {"key": "exception.type", "value": {"stringValue": "RateLimitError"}}]}]
    target = priced.partition_dir("inference", DT) / "traces.json"
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(_otlp_line(unwrapped, as_object, string_status, http, events, None)) + "\n")
    s = ingest(priced, "inference", DT)
    assert (s.rows_read, s.rows_loaded, s.rows_skipped, s.rows_quarantined) == (6, 1, 1, 4)
    assert query(priced, "SELECT record_number, reason FROM quality.quarantine ORDER BY 1") == [
        (1, "invalid_type: span value is not in the OTLP/JSON shape"),
        (2, "invalid_type: span attributes is not in the OTLP/JSON shape"),
        (3, "invalid_type: span status is not in the OTLP/JSON shape"),
        (6, "unparseable: not a JSON object")]
    (attributes,), = query(priced, "SELECT attributes FROM raw.inference_events")
    assert json.loads(attributes)["span.events"][0]["name"] == "exception"  # nothing of the span is dropped


def test_any_otlp_line_is_loaded_skipped_quarantined_or_counted(tmp_path_factory):
    """Hypothesis: spans of arbitrary shapes (good calls, other spans, nulls, strings, attributes of the wrong
    shape, missing ids) are each loaded, skipped, quarantined or a duplicate: the accounting always adds up."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from aiso_pipeline.config import data_dir

    attr_values = st.one_of(st.text(max_size=8), st.integers(-5, 10**6), st.none(), st.booleans(),
                            st.dictionaries(st.sampled_from(["stringValue", "intValue", "boolValue", "x"]),
                                            st.one_of(st.text(max_size=5), st.integers(0, 99)), max_size=2))
    keys = st.sampled_from(["gen_ai.operation.name", "gen_ai.request.model", "gen_ai.usage.input_tokens",
                            "gen_ai.usage.output_tokens", "gen_ai.response.id", "user.id", "http.request.method",
                            "openinference.span.kind", "error.type"])
    attributes = st.one_of(st.lists(st.fixed_dictionaries({"key": keys, "value": attr_values}), max_size=6),
                           st.dictionaries(keys, st.text(max_size=5), max_size=3), st.none())
    good = st.builds(lambda i: _span(f"{i:016x}", **CALL), st.integers(0, 50))
    spans = st.one_of(good, st.none(), st.text(max_size=5), st.integers(),
                      st.builds(lambda sid, attrs, status: {"spanId": sid, "attributes": attrs, "status": status,
                                                            "startTimeUnixNano": "1773133200000000000"},
                                st.one_of(st.none(), st.sampled_from(["a1", "a2"])), attributes,
                                st.one_of(st.none(), st.just({}), st.just("ERROR"), st.just({"code": 2}))))
    lines = st.lists(st.one_of(st.lists(spans, max_size=5).map(lambda ss: json.dumps(_otlp_line(*ss))),
                               st.just('{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": 1}'),
                               st.just('{"resourceSpans": "x"}')), min_size=1, max_size=4)

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(lines)
    def check(batch):
        data = data_dir(tmp_path_factory.mktemp("otlp") / "data")
        for stream in ("inference", "product"):
            data.landing(stream).mkdir(parents=True)
        data.reference.mkdir(parents=True)
        shutil.copyfile(DEFAULT_PRICES, data.prices)
        target = data.partition_dir("inference", DT) / "traces.json"
        target.parent.mkdir(parents=True)
        target.write_text("\n".join(batch) + "\n")
        s = ingest(data, "inference", DT)
        assert s.rows_read == s.rows_loaded + s.rows_duplicate + s.rows_quarantined + s.rows_skipped, s
        assert query(data, "SELECT count(*) FROM raw.inference_events WHERE request_id IS NULL OR model IS NULL "
                           "OR status NOT IN ('ok', 'error', 'timeout')") == [(0,)]
    check()


def test_otlp_as_the_collectors_legacy_zstd_path_writes_it(priced):
    """`compression: zstd` on the file exporter's legacy path: each request a zstd frame after its 4-byte length."""
    import struct

    import zstandard
    lines = (FIXTURES / "otlp" / "traces.json").read_text().splitlines()
    target = priced.partition_dir("inference", DT) / "traces.json"
    target.parent.mkdir(parents=True)
    with open(target, "wb") as out:
        for line in lines:
            frame = zstandard.ZstdCompressor().compress(line.encode())
            out.write(struct.pack(">I", len(frame)) + frame)
    s = ingest(priced, "inference", DT)
    want = expected("otlp", "traces.json")
    assert (s.rows_read, s.rows_loaded, s.rows_skipped) == (want["rows_read"], len(want["rows"]), want["skipped"])
    assert set(loaded_inferences(priced)) == {r["request_id"] for r in want["rows"]}


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_columnar_file_parsed_from_its_cells_loads_as_its_rows_as_json_lines(tmp_path, fmt):
    """Parquet and CSV are parsed from their cells (render.TypedRecords), not written as JSON and parsed back; the
    result is the JSON parse's, row for row: the same values, `attributes`, quarantine reasons and payloads. Rows
    cover NaN, a naive timestamp and one with a zone, integers stored as doubles, aliases, nulls, a nested object,
    and undeclared columns (a struct, a decimal, a date). A CSV cell is text, or the JSON it holds when it opens
    with { or [ (the JSON lines here are written so, independently of the pipeline)."""
    import duckdb

    from aiso_pipeline.config import data_dir
    from aiso_pipeline_tests.conftest import PRICES
    rows = """
        SELECT 'r' || i AS request_id,
               CASE WHEN i % 13 = 7 THEN NULL ELSE TIMESTAMP '2026-03-10 09:00:00' + to_seconds(i) END AS "timestamp",
               TIMESTAMPTZ '2026-03-10 09:30:00+00' + to_seconds(i) AS start_time,  -- the alias, with a zone
               CASE WHEN i % 11 = 5 THEN NULL WHEN i = 12 THEN '[ "gpt-4o" ]'  -- CSV: read as its JSON
                    ELSE ['gpt-4o', 'claude-3-5-sonnet'][1 + i % 2] END AS model,
               CASE WHEN i % 7 = 3 THEN 10.5 ELSE 10.0 + i END AS input_tokens,  -- 10.5: not an integer
               CASE WHEN i % 5 = 0 THEN NULL ELSE 3 + i END AS "gen_ai.usage.output_tokens",
               CASE WHEN i % 6 = 1 THEN 'nan'::DOUBLE WHEN i % 6 = 2 THEN 1.5 ELSE i / 40 END AS confidence,
               CASE WHEN i % 9 = 4 THEN 'weird' ELSE 'ok' END AS status,
               CASE WHEN i % 8 = 6 THEN 'maybe' ELSE (i % 4 = 0)::VARCHAR END AS is_fallback,
               {'lang': ['en', 'de'][1 + i % 2], 'n': i} AS features,
               CASE WHEN i % 3 = 0 THEN NULL ELSE 'eu-' || i END AS region,
               {'build': i, 'tags': ['a', 'b']} AS meta, (i / 8)::DECIMAL(6, 2) AS price, DATE '2026-03-10' AS day
        FROM range(40) AS t(i)"""
    roots = {}
    for kind in (fmt, "jsonl"):
        d = data_dir(tmp_path / kind)
        folder = d.partition_dir("inference", DT)
        folder.mkdir(parents=True)
        d.landing("product").mkdir(parents=True)
        d.reference.mkdir(parents=True)
        d.prices.write_text(PRICES)
        roots[kind] = d
    landed = roots[fmt].partition_dir("inference", DT) / f"calls.{fmt}"
    jsonl = roots["jsonl"].partition_dir("inference", DT) / "calls.jsonl"
    con = duckdb.connect()
    if fmt == "parquet":
        con.execute(f"COPY ({rows}) TO '{landed}' (FORMAT parquet)")
        # the same rows as JSON lines, as a JSON export would write them (a naive timestamp in UTC with its Z)
        con.execute(f"""COPY (SELECT * REPLACE (strftime("timestamp", '%Y-%m-%dT%H:%M:%S.%fZ') AS "timestamp",
                                                CASE WHEN isnan(confidence) THEN NULL ELSE confidence END AS confidence)
                              FROM read_parquet('{landed}', hive_partitioning = false))
                        TO '{jsonl}' (FORMAT json)""")
    else:
        con.execute(f"""COPY (SELECT * REPLACE (replace(to_json(features)::VARCHAR, ',', ', ') AS features,
                                                to_json(meta)::VARCHAR AS meta,
                                                strftime("timestamp", '%Y-%m-%dT%H:%M:%SZ') AS "timestamp")
                              FROM ({rows})) TO '{landed}' (FORMAT csv, HEADER)""")
        cells = con.execute(f"SELECT * FROM read_csv('{landed}', all_varchar = true, hive_partitioning = false) "
                            "LIMIT 0").description
        members = ", ".join(f"\"{c}\" := CASE WHEN regexp_matches(\"{c}\", '^\\s*[{{\\[]') THEN json(\"{c}\") "
                            f"ELSE to_json(\"{c}\") END" for c, *_ in cells)
        with open(jsonl, "w") as out:
            for (line,) in con.execute(f"SELECT to_json(struct_pack({members})) FROM read_csv('{landed}', "
                                       f"all_varchar = true, hive_partitioning = false)").fetchall():
                out.write(line + "\n")
    got = {}
    for kind, d in roots.items():
        s = ingest(d, "inference", DT)
        header = 1 if kind == "csv" else 0  # a CSV file's line 1 is its header
        got[kind] = (
            s.rows_loaded, s.quarantine_reasons,
            query(d, f"""SELECT * EXCLUDE (source_file, loaded_at) REPLACE (line_number - {header} AS line_number)
                         FROM raw.inference_events ORDER BY request_id"""),
            query(d, f"SELECT line_number - {header}, reason, payload FROM quality.quarantine ORDER BY line_number"))
    assert got[fmt][0] == 40 - len(got[fmt][3]) and 0 < len(got[fmt][3]) < 40
    assert ({part.split(":")[0] for r in got[fmt][1] for part in r.split("; ")}
            >= {"invalid_type", "out_of_range", "missing_required_key"})
    for a, b in zip(got[fmt][2], got["jsonl"][2]):
        assert a == b, [(i, x, y) for i, (x, y) in enumerate(zip(a, b)) if x != y]
    assert got[fmt][:3] == got["jsonl"][:3]
    for (line, reason, payload), (line_j, reason_j, payload_j) in zip(got[fmt][3], got["jsonl"][3]):
        assert (line, reason) == (line_j, reason_j)
        assert json.loads(payload) == json.loads(payload_j)  # the row, as JSON
