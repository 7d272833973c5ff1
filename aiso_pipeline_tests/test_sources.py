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
