"""Cost at ingest (CONTRACT section 4), each value worked out by hand from the price table in conftest."""
import pytest

from aiso_pipeline.config import DEFAULT_PRICES
from aiso_pipeline.errors import AisoError
from aiso_pipeline.ingest.prices import read_prices
from aiso_pipeline_tests.conftest import inference, ingest, land, query

DT = "2025-06-01"


def costs(data) -> dict:
    return {r[0]: r[1:] for r in query(data, "SELECT request_id, cost_usd, cost_source FROM raw.inference_events")}


def test_cost_with_cached_tokens_uses_the_cached_price(data):
    # gpt-4o from 2024-10-01: input 2.50, output 10.00, cached 1.25 per million tokens
    land(data, "inference", DT, "a.jsonl", [inference("r", input_tokens=1000, cached_input_tokens=200, output_tokens=100)])
    ingest(data, "inference", DT)
    cost, source = costs(data)["r"]
    assert cost == pytest.approx((800 * 2.50 + 200 * 1.25 + 100 * 10.00) / 1e6)  # 0.00325
    assert source == "price_table"


def test_cached_price_defaults_to_input_price(data):
    # gpt-4o before 2024-10-01: input 5.00, output 15.00, no cached price -> cached tokens at 5.00
    land(data, "inference", "2024-09-01", "a.jsonl", [
        inference("r", timestamp="2024-09-01T10:00:00Z", input_tokens=1000, cached_input_tokens=400, output_tokens=10)])
    ingest(data, "inference", "2024-09-01")
    assert costs(data)["r"][0] == pytest.approx((600 * 5 + 400 * 5 + 10 * 15) / 1e6)


def test_price_version_is_the_latest_on_or_before_the_event(data):
    land(data, "inference", "2024-09-30", "a.jsonl", [
        inference("before", timestamp="2024-09-30T23:59:59Z", input_tokens=1_000_000),
        inference("at", timestamp="2024-10-01T00:00:00Z", input_tokens=1_000_000),
        inference("too_early", timestamp="2024-05-12T23:59:59Z", input_tokens=1_000_000)])
    ingest(data, "inference", "2024-09-30")
    got = costs(data)
    assert got["before"][0] == pytest.approx(5.00)
    assert got["at"][0] == pytest.approx(2.50)
    assert got["too_early"] == (None, None)  # before the first valid_from: unpriced, not free


def test_pattern_matches_the_whole_model_name(data):
    land(data, "inference", DT, "a.jsonl", [
        inference("snapshot", model="gpt-4o-2024-08-06", input_tokens=1_000_000),
        inference("mini", model="gpt-4o-mini", input_tokens=1_000_000)])
    s = ingest(data, "inference", DT)
    got = costs(data)
    assert got["snapshot"][0] == pytest.approx(2.50)
    assert got["mini"] == (None, None)
    assert s.rows_unpriced == 1


def test_reported_cost_wins_over_the_price_table(data):
    land(data, "inference", DT, "a.jsonl", [
        inference("r", input_tokens=1_000_000, cost_usd=0.123),
        inference("unknown_model_reported", model="acme-7b", cost_usd=0)])
    s = ingest(data, "inference", DT)
    assert costs(data) == {"r": (0.123, "reported"), "unknown_model_reported": (0.0, "reported")}
    assert s.rows_unpriced == 0


def test_unpriced_rows_are_null_and_counted(data):
    land(data, "inference", DT, "a.jsonl", [inference("u1", model="acme-7b"), inference("u2", model="acme-7b", input_tokens=5)])
    s = ingest(data, "inference", DT)
    assert s.rows_unpriced == 2
    assert set(costs(data).values()) == {(None, None)}
    assert query(data, "SELECT sum(rows_unpriced) FROM quality.ingest_log") == [(2,)]


def test_missing_price_table_is_replaced_by_the_default(data):
    data.prices.unlink()
    land(data, "inference", DT, "a.jsonl", [inference("r")])
    ingest(data, "inference", DT)
    assert data.prices.read_text() == DEFAULT_PRICES.read_text()


@pytest.mark.parametrize("content,message", [
    ("model,price\ngpt,1\n", "lacks column(s) model_pattern, valid_from, input_per_mtok, output_per_mtok"),
    ("model_pattern,valid_from,input_per_mtok,output_per_mtok\ngpt-(,2024-01-01,1,2\n", "line 2: model_pattern"),
    ("model_pattern,valid_from,input_per_mtok,output_per_mtok\ngpt,soon,1,2\n", "line 2: valid_from 'soon'"),
    ("model_pattern,valid_from,input_per_mtok,output_per_mtok\ngpt,2024-01-01,one,2\n", "line 2: input_per_mtok 'one'"),
    ("model_pattern,valid_from,input_per_mtok,output_per_mtok\ngpt,2024-01-01,-1,2\n", "is negative"),
])
def test_bad_price_table_gives_one_clear_line(data, content, message):
    data.prices.write_text(content)
    with pytest.raises(AisoError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        read_prices(data.prices)
    assert "\n" not in str(e.value)


def test_shipped_price_table_is_valid():
    rows = read_prices(DEFAULT_PRICES)
    assert len(rows) >= 20


def test_provider_prefix_and_snapshot_suffix_still_find_the_price_row(data):
    # gpt-4o from 2024-10-01: input 2.50, output 10.00 per million; claude-3-5-sonnet: input 3.00, output 15.00
    land(data, "inference", DT, "a.jsonl", [
        inference("prefixed", model="openai/gpt-4o", input_tokens=1000, output_tokens=100),
        inference("gateway", model="openrouter/openai/gpt-4o-2024-08-06", input_tokens=1000, output_tokens=100),
        inference("bedrock", model="bedrock/us.anthropic.claude-3-5-sonnet-20241022-v2:0", input_tokens=1000),
        inference("vertex", model="vertex_ai/claude-3-5-sonnet@20241022", input_tokens=1000),
        inference("deployment", model="azure/my-deployment", input_tokens=1000)])
    ingest(data, "inference", DT)
    got = costs(data)
    assert got["prefixed"] == got["gateway"] == (pytest.approx((1000 * 2.50 + 100 * 10.00) / 1e6), "price_table")
    assert got["bedrock"][0] == got["vertex"][0] == pytest.approx(1000 * 3.00 / 1e6)
    assert got["deployment"] == (None, None)  # a deployment name says nothing of the model: unpriced, not $0
    # the model keeps what the source said
    assert query(data, "SELECT model FROM raw.inference_events WHERE request_id = 'bedrock'") == [
        ("bedrock/us.anthropic.claude-3-5-sonnet-20241022-v2:0",)]


def test_a_call_without_token_counts_is_unpriced_never_free(data):
    land(data, "inference", DT, "a.jsonl", [
        inference("none"), inference("input_only", input_tokens=1000), inference("reported", cost_usd=0.02)])
    s = ingest(data, "inference", DT)
    got = costs(data)
    assert got["none"] == (None, None)
    assert got["input_only"] == (pytest.approx(1000 * 2.50 / 1e6), "price_table")  # e.g. an embeddings call
    assert got["reported"] == (pytest.approx(0.02), "reported")
    assert s.rows_unpriced == 1
