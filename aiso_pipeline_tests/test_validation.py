"""Validation: every check fails on a crafted bad partition and passes on a good one; blocking in Dagster;
results in quality.check_results and reports/validation; thresholds from YAML; GX evaluated in DuckDB."""
import json

import dagster as dg
import pytest

from aiso_pipeline import warehouse
from aiso_pipeline.defs.ingest import raw_inference_events, raw_product_events
from aiso_pipeline.defs.resources import DAILY, WarehouseResource
from aiso_pipeline.defs.validation import validate_raw_inference_events, validate_raw_product_events
from aiso_pipeline.errors import AisoError
from aiso_pipeline.validation import CHECKS, report_path, validate_partition
from aiso_pipeline.validation import config as validation_config

from .conftest import ingest, inference, land, product, query

DT = "2025-06-01"
N = 20  # rows of a good day: one bad row is 5 %, over every share threshold of 1 %, under 5 % + one row


def good_day(data, dt=DT, n=N, stream_rows=None):
    """Land and ingest a clean day: n inferences, n/2 product events following from them."""
    rows = [inference(f"{dt}-r{i}", timestamp=f"{dt}T{10 + i // 60}:{i % 60:02d}:00Z", input_tokens=100 + i, output_tokens=20,
                      cached_input_tokens=10, latency_ms=300.0 + i, status=["ok", "error", "timeout"][i % 3],
                      confidence=i / n, sample_rate=1.0 if i % 2 else 0.5)
            for i in range(n)]
    events = [product(f"{dt}-m{i}", timestamp=f"{dt}T{12 + i // 60}:{i % 60:02d}:00Z", request_id=f"{dt}-r{i}")
              for i in range(n // 2)]
    land(data, "inference", dt, "part-0.jsonl", rows)
    land(data, "product", dt, "part-0.jsonl", events)
    ingest(data, "inference", dt)
    ingest(data, "product", dt)


def validate(data, stream, dt=DT):
    with warehouse.connect(data) as con:
        return {o.check_name: o for o in validate_partition(con, data, stream, dt)}


def failing(outcomes) -> set[str]:
    return {name for name, o in outcomes.items() if not o.passed}


def sql(*statements):
    def mutate(data):
        with warehouse.connect(data) as con:
            for s in statements:
                con.execute(s)
    return mutate


# --- every check passes on a good day --------------------------------------------------------------------------

@pytest.mark.parametrize("stream", ["inference", "product"])
def test_good_partition_passes_every_check(data, stream):
    good_day(data)
    outcomes = validate(data, stream)
    assert list(outcomes) == [c.name for c in CHECKS[stream]]
    assert failing(outcomes) == set()
    for o in outcomes.values():
        assert o.examples == []
        assert o.severity in ("ERROR", "WARN") and o.threshold


# --- each check fails on a crafted bad partition (and only that check) -----------------------------------------

INF, PROD = "raw.inference_events", "raw.product_events"
R3, M3 = f"'{DT}-r3'", f"'{DT}-m3'"

BAD = {
    # inserted or updated directly: ingestion would have quarantined or deduplicated these rows
    "inference-null-model": ("inference", "required_keys_not_null", sql(
        f"ALTER TABLE {INF} ALTER COLUMN model DROP NOT NULL", f"UPDATE {INF} SET model = NULL WHERE request_id = {R3}"),
        f"{DT}-r3"),
    "inference-null-request-id": ("inference", "required_keys_not_null", sql(
        f"ALTER TABLE {INF} ALTER COLUMN request_id DROP NOT NULL",
        f"UPDATE {INF} SET request_id = NULL WHERE request_id = {R3}"), None),
    "inference-duplicate": ("inference", "request_id_unique", sql(
        f"INSERT INTO {INF} SELECT * FROM {INF} WHERE request_id = {R3}"), f"{DT}-r3"),
    "inference-bad-status": ("inference", "status_accepted_values", sql(
        f"UPDATE {INF} SET status = 'exploded' WHERE request_id = {R3}"), f"{DT}-r3"),
    "inference-negative-input-tokens": ("inference", "values_in_range", sql(
        f"UPDATE {INF} SET input_tokens = -1, cached_input_tokens = 0 WHERE request_id = {R3}"), f"{DT}-r3"),
    "inference-negative-output-tokens": ("inference", "values_in_range", sql(
        f"UPDATE {INF} SET output_tokens = -5 WHERE request_id = {R3}"), f"{DT}-r3"),
    "inference-negative-cached-tokens": ("inference", "values_in_range", sql(
        f"UPDATE {INF} SET cached_input_tokens = -1 WHERE request_id = {R3}"), f"{DT}-r3"),
    "inference-cached-over-input": ("inference", "values_in_range", sql(
        f"UPDATE {INF} SET cached_input_tokens = input_tokens + 1 WHERE request_id = {R3}"), f"{DT}-r3"),
    "inference-negative-latency": ("inference", "values_in_range", sql(
        f"UPDATE {INF} SET latency_ms = -0.5 WHERE request_id = {R3}"), f"{DT}-r3"),
    "inference-confidence-over-1": ("inference", "values_in_range", sql(
        f"UPDATE {INF} SET confidence = 1.01 WHERE request_id = {R3}"), f"{DT}-r3"),
    "inference-confidence-negative": ("inference", "values_in_range", sql(
        f"UPDATE {INF} SET confidence = -0.01 WHERE request_id = {R3}"), f"{DT}-r3"),
    "inference-sample-rate-zero": ("inference", "values_in_range", sql(
        f"UPDATE {INF} SET sample_rate = 0 WHERE request_id = {R3}"), f"{DT}-r3"),
    "inference-sample-rate-over-1": ("inference", "values_in_range", sql(
        f"UPDATE {INF} SET sample_rate = 1.5 WHERE request_id = {R3}"), f"{DT}-r3"),
    "inference-timestamp-too-late": ("inference", "timestamps_in_window", sql(
        f"UPDATE {INF} SET \"timestamp\" = TIMESTAMPTZ '2025-06-03 00:00:00+00' WHERE request_id = {R3}"),
        f"{DT}-r3"),
    "inference-timestamp-too-early": ("inference", "timestamps_in_window", sql(
        f"UPDATE {INF} SET \"timestamp\" = TIMESTAMPTZ '2025-05-30 23:59:59+00' WHERE request_id = {R3}"),
        f"{DT}-r3"),
    "inference-unpriced": ("inference", "unpriced_share", sql(
        f"UPDATE {INF} SET cost_usd = NULL WHERE request_id IN ({R3}, '{DT}-r4')"), f"{DT}-r3"),
    "product-null-event": ("product", "required_keys_not_null", sql(
        f"ALTER TABLE {PROD} ALTER COLUMN event DROP NOT NULL", f"UPDATE {PROD} SET event = NULL WHERE message_id = {M3}"),
        f"{DT}-m3"),
    "product-no-identity": ("product", "required_keys_not_null", sql(
        f"UPDATE {PROD} SET user_id = NULL, anonymous_id = NULL WHERE message_id = {M3}"), f"{DT}-m3"),
    "product-duplicate": ("product", "message_id_unique", sql(
        f"INSERT INTO {PROD} SELECT * FROM {PROD} WHERE message_id = {M3}"), f"{DT}-m3"),
    "product-timestamp-out-of-window": ("product", "timestamps_in_window", sql(
        f"UPDATE {PROD} SET \"timestamp\" = TIMESTAMPTZ '2025-06-10 12:00:00+00' WHERE message_id = {M3}"),
        f"{DT}-m3"),
    "product-unknown-request": ("product", "unknown_request_share", sql(
        f"UPDATE {PROD} SET request_id = 'nobody-made-this' WHERE message_id = {M3}"), f"{DT}-m3"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_partition_fails_its_check_only(data, case):
    stream, check, mutate, example_id = BAD[case]
    good_day(data)
    mutate(data)
    outcomes = validate(data, stream)
    assert failing(outcomes) == {check}
    o = outcomes[check]
    assert o.severity == validation_config.defaults()[stream][check]["severity"]
    assert o.observed_value and o.observed_value > 0
    if example_id is not None:
        assert example_id in json.dumps(o.examples), o.examples


def test_timestamps_window_is_the_day_plus_minus_one_day(data):
    good_day(data)
    sql(f"UPDATE {INF} SET \"timestamp\" = TIMESTAMPTZ '2025-05-31 00:00:00+00' WHERE request_id = {R3}",
        f"UPDATE {INF} SET \"timestamp\" = TIMESTAMPTZ '2025-06-02 23:59:59.999+00' WHERE request_id = '{DT}-r4'")(data)
    assert validate(data, "inference")["timestamps_in_window"].passed


def test_share_thresholds_tolerate_up_to_the_share(data):
    good_day(data, n=100)
    sql(f"UPDATE {INF} SET \"timestamp\" = TIMESTAMPTZ '2025-06-05 00:00:00+00' WHERE request_id = '{DT}-r3'")(data)
    o = validate(data, "inference")["timestamps_in_window"]
    assert o.passed and o.observed_value == pytest.approx(0.01)  # 1 of 100, max_share 0.01
    sql(f"UPDATE {INF} SET \"timestamp\" = TIMESTAMPTZ '2025-06-05 00:00:00+00' WHERE request_id = '{DT}-r4'")(data)
    o = validate(data, "inference")["timestamps_in_window"]
    assert not o.passed and o.observed_value == pytest.approx(0.02)


def test_unpriced_rows_from_ingestion_fail_unpriced_share_with_the_models(data):
    good_day(data)
    land(data, "inference", DT, "part-1.jsonl", [inference(f"x{i}", model="mystery-model") for i in range(3)])
    ingest(data, "inference", DT)
    o = validate(data, "inference")["unpriced_share"]
    assert not o.passed and o.observed_value == pytest.approx(3 / (N + 3))
    assert {ex["model"] for ex in o.examples} == {"mystery-model"}


def test_quarantined_rows_fail_quarantine_share(data):
    good_day(data)
    land(data, "inference", DT, "part-1.jsonl", ["{not json", {"request_id": "q1"}, inference("q2", confidence=3)])
    ingest(data, "inference", DT)
    outcomes = validate(data, "inference")
    assert failing(outcomes) == {"quarantine_share"}
    o = outcomes["quarantine_share"]
    assert o.observed_value == pytest.approx(3 / (N + 3)) and o.severity == "ERROR"
    assert {ex["reason"].split(":")[0] for ex in o.examples} >= {"unparseable", "missing_required_key"}


def test_quarantine_share_passes_at_the_threshold(data):
    good_day(data, n=95)  # 5 bad of 100 read = 0.05
    land(data, "product", DT, "part-1.jsonl", ["{nope"] * 5 + [product(f"p{i}") for i in range(48)])
    ingest(data, "product", DT)
    o = validate(data, "product")["quarantine_share"]
    assert o.passed and o.observed_value == pytest.approx(5 / 100)


def test_unreadable_file_fails_files_quarantined(data):
    good_day(data)
    (data.partition_dir("inference", DT) / "part-1.jsonl.gz").write_bytes(b"not gzip at all")
    ingest(data, "inference", DT)
    outcomes = validate(data, "inference")
    assert failing(outcomes) == {"files_quarantined"}
    assert outcomes["files_quarantined"].examples[0]["source_file"].endswith("part-1.jsonl.gz")


def _history(data, stream, days, rows, first=1):
    table, key = ("raw.inference_events", "request_id") if stream == "inference" else ("raw.product_events", "message_id")
    extra = "model" if stream == "inference" else "event"
    sql(f"""INSERT INTO {table} ({key}, "timestamp", {extra}, dt, source_file)
            SELECT 'h' || d || '-' || i, TIMESTAMPTZ '{DT} 00:00:00+00' - to_days(d::INTEGER), 'x',
                   DATE '{DT}' - d::INTEGER, 'history.jsonl'
            FROM range({first}, {days + 1}) AS a(d), range({rows}) AS b(i)""")(data)


@pytest.mark.parametrize("stream", ["inference", "product"])
def test_volume_band_around_the_trailing_median(data, stream):
    good_day(data)  # N inferences, N/2 product events
    today = N if stream == "inference" else N // 2
    _history(data, stream, days=7, rows=today)
    o = validate(data, stream)["volume"]
    assert o.passed and o.observed_value == pytest.approx(1.0)
    assert o.details["history_days"] == 7 and o.details["median_rows"] == today
    key = "request_id" if stream == "inference" else "message_id"
    sql(f"DELETE FROM raw.{stream}_events WHERE dt = DATE '{DT}' AND {key} NOT IN ('{DT}-r0', '{DT}-m0')")(data)
    outcomes = validate(data, stream)
    assert failing(outcomes) == {"volume"}
    assert outcomes["volume"].observed_value == pytest.approx(1 / today) and outcomes["volume"].severity == "WARN"


def test_volume_too_high_fails_and_short_history_passes(data):
    good_day(data)
    _history(data, "inference", days=2, rows=5)  # two days of history: not enough to judge
    o = validate(data, "inference")["volume"]
    assert o.passed and o.observed_value is None and "needed" in o.details["note"]
    _history(data, "inference", days=4, rows=5, first=3)  # days 3 and 4 added: median 5
    o = validate(data, "inference")["volume"]
    assert not o.passed and o.observed_value == pytest.approx(N / 5)


@pytest.mark.parametrize("stream", ["inference", "product"])
def test_freshness_fails_without_landing_files(data, stream):
    good_day(data, dt="2025-05-31")
    outcomes = validate(data, stream)  # DT itself has no files
    assert failing(outcomes) == {"freshness"}
    assert outcomes["freshness"].observed_value == 0 and outcomes["freshness"].severity == "WARN"


def test_unknown_request_share_looks_back_one_day(data):
    good_day(data, dt="2025-05-30")
    good_day(data, dt="2025-05-31")
    good_day(data)
    # follows from yesterday's inference (known), and from the day before (outside the window)
    sql(f"UPDATE {PROD} SET request_id = '2025-05-31-r5' WHERE message_id = '{DT}-m1'")(data)
    assert validate(data, "product")["unknown_request_share"].passed
    sql(f"UPDATE {PROD} SET request_id = '2025-05-30-r5' WHERE message_id = '{DT}-m2'")(data)
    o = validate(data, "product")["unknown_request_share"]
    assert not o.passed and o.observed_value == pytest.approx(1 / (N // 2))
    assert [ex["request_id"] for ex in o.examples] == ["2025-05-30-r5"]


def test_empty_partition_passes_row_checks(data):
    outcomes = validate(data, "inference")
    assert failing(outcomes) == {"freshness"}
    assert outcomes["unpriced_share"].observed_value is None


# --- results are recorded: quality.check_results (idempotent) and the GX JSON report ---------------------------

def test_results_replace_their_rows_only_and_report_is_gx_json(data):
    good_day(data)
    query(data, "INSERT INTO quality.check_results (dt, asset, check_name, passed, severity) "
                f"VALUES ('{DT}', 'marts/other', 'volume', true, 'WARN')")
    validate(data, "inference")
    sql(f"UPDATE {INF} SET status = 'exploded' WHERE request_id = {R3}")(data)
    validate(data, "inference")
    rows = query(data, "SELECT asset, check_name, passed, severity, observed_value, threshold, details "
                       f"FROM quality.check_results WHERE dt = '{DT}' ORDER BY asset, check_name")
    ours = [r for r in rows if r[0] == "raw/inference_events"]
    assert len(ours) == len(CHECKS["inference"]) and ("marts/other", "volume") in [r[:2] for r in rows]
    status = next(r for r in ours if r[1] == "status_accepted_values")
    assert status[2:6] == (False, "ERROR", 1.0, "0 rows")
    assert f"{DT}-r3" in json.loads(status[6])["examples"][0].values()

    report = json.loads(report_path(data, "inference", DT).read_text())
    assert report["success"] is False
    assert {r["expectation_config"]["meta"]["check"] for r in report["results"]} == \
        {c.name for c in CHECKS["inference"] if c.kind == "gx"}
    failed = [r for r in report["results"] if not r["success"]]
    assert [r["expectation_config"]["type"] for r in failed] == ["expect_column_values_to_be_in_set"]
    assert failed[0]["expectation_config"]["severity"] == "critical"
    assert failed[0]["result"]["partial_unexpected_index_list"][0]["request_id"] == f"{DT}-r3"
    assert [c["check_name"] for c in report["meta"]["aiso_checks"]] == [c.name for c in CHECKS["inference"]]


# --- thresholds: packaged YAML, overridden by the data directory's ---------------------------------------------

def test_override_yaml_changes_thresholds_and_severity(data):
    good_day(data)
    sql(f"UPDATE {INF} SET cost_usd = NULL WHERE request_id IN ({R3}, '{DT}-r4')")(data)  # 10 % unpriced
    assert not validate(data, "inference")["unpriced_share"].passed
    (data.reference / "validation.yaml").write_text("inference:\n  unpriced_share: {max_share: 0.1, severity: error}\n")
    o = validate(data, "inference")["unpriced_share"]
    assert o.passed and o.severity == "ERROR" and o.threshold == "<= 0.1"
    cfg = validation_config.load(data)
    assert cfg["inference"]["volume"] == validation_config.defaults()["inference"]["volume"]


@pytest.mark.parametrize("text,message", [
    ("inference:\n  unpriced_shares: {max_share: 0.1}\n", "unknown key inference.'unpriced_shares'"),
    ("product:\n  volume: {severity: FATAL}\n", "must be ERROR or WARN"),
    ("product:\n  volume: {min_ratio: -1}\n", "must be a number >= 0"),
    ("inference:\n  unpriced_share: {max_share: 5}\n", "fraction"),
    ("inference: [1, 2]\n", "must be a mapping"),
    ("{{{", "not valid YAML"),
])
def test_bad_override_yaml_is_a_one_line_error(data, text, message):
    (data.reference / "validation.yaml").write_text(text)
    with pytest.raises(AisoError, match=message.replace("(", r"\(").replace("'", "'")) as err:
        validation_config.load(data)
    assert "\n" not in str(err.value)


# --- Great Expectations really runs in DuckDB, on the pipeline's connection ------------------------------------

def test_gx_runs_on_the_pipeline_connection_in_duckdb(data):
    from aiso_pipeline.validation.gx_duckdb import DuckDBExecutionEngine, gx_session

    good_day(data)
    with warehouse.connect(data) as con:  # the pipeline holds the file read-write
        with gx_session(con) as (context, datasource):
            engine = datasource.get_execution_engine()
            assert isinstance(engine, DuckDBExecutionEngine) and engine.dialect_name == "duckdb"
            batch = datasource.add_query_asset("q", query=f"SELECT * FROM raw.inference_events WHERE dt = '{DT}'") \
                .add_batch_definition_whole_table("b").get_batch()
            import great_expectations.expectations as gxe
            r = batch.validate(gxe.ExpectTableRowCountToBeBetween(min_value=N, max_value=N))
            assert r.success and r.result["observed_value"] == N
            assert type(batch.data).__name__ == "SqlAlchemyBatchData"  # a SQL selectable, not a DataFrame


def test_plain_gx_sql_datasource_still_loses_rows_on_duckdb(tmp_path):
    """GX issue #11579, the reason for gx_duckdb.DuckDBExecutionEngine. When this fails, GX fixed it upstream:
    drop the execute_query override (keep the creator, which shares the pipeline's connection)."""
    import duckdb
    import great_expectations as gx
    import great_expectations.expectations as gxe

    path = tmp_path / "plain.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t AS SELECT range AS x FROM range(10)")
    con.close()
    context = gx.get_context(mode="ephemeral")
    batch = context.data_sources.add_sql("plain", connection_string=f"duckdb:///{path}") \
        .add_table_asset("t", table_name="t").add_batch_definition_whole_table("b").get_batch()
    r = batch.validate(gxe.ExpectTableRowCountToBeBetween(min_value=10, max_value=10))
    assert not r.success and r.result == {}


# --- Dagster: checks run per partition beside the raw assets; ERROR blocks downstream, WARN does not -----------

@dg.asset(deps=[["raw", "inference_events"]], partitions_def=DAILY, group_name="test", kinds={"python"})
def downstream_of_inferences() -> None:
    """A stand-in for the marts built on raw.inference_events."""


def materialize(data, partition_key=DT):
    return dg.materialize(
        [raw_inference_events, raw_product_events, validate_raw_inference_events, validate_raw_product_events,
         downstream_of_inferences],
        partition_key=partition_key, raise_on_error=False,
        resources={"warehouse": WarehouseResource(data_dir=str(data.root))},
    )


def check_evaluations(result) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def land_good_day(data, dt=DT):
    land(data, "inference", dt, "part-0.jsonl", [inference(f"r{i}", timestamp=f"{dt}T10:00:00Z", input_tokens=100,
                                                           output_tokens=10) for i in range(N)])
    land(data, "product", dt, "part-0.jsonl", [product(f"m{i}", request_id=f"r{i}", timestamp=f"{dt}T11:00:00Z")
                                               for i in range(N)])


def test_dagster_good_partition_runs_checks_of_that_partition_then_downstream(data):
    land_good_day(data, "2025-06-02")
    result = materialize(data, "2025-06-02")
    assert result.success
    evaluations = check_evaluations(result)
    assert set(evaluations) == {(f"raw/{s}_events", c.name) for s in CHECKS for c in CHECKS[s]}
    assert all(e.passed for e in evaluations.values())
    meta = evaluations[("raw/inference_events", "request_id_unique")].metadata
    assert meta["partition"].value == "2025-06-02" and meta["threshold"].value == "0 rows"
    assert meta["observed_value"].value == 0.0
    assert "downstream_of_inferences" in materialized(result)
    assert query(data, "SELECT DISTINCT dt::VARCHAR FROM quality.check_results") == [("2025-06-02",)]


def test_dagster_blocking_error_failure_stops_downstream(data):
    land_good_day(data)
    land(data, "inference", DT, "part-1.jsonl", ["{broken"] * 5)  # 5 of 25 rows quarantined: 20 % > 5 %
    result = materialize(data)
    assert not result.success
    e = check_evaluations(result)[("raw/inference_events", "quarantine_share")]
    assert not e.passed and e.severity == dg.AssetCheckSeverity.ERROR and e.blocking
    assert e.metadata["observed_value"].value == pytest.approx(0.2)
    assert "unparseable" in e.metadata["examples"].value
    assert "downstream_of_inferences" not in materialized(result)
    assert {"raw/inference_events", "raw/product_events"} <= materialized(result)
    # the failure is recorded for the partition even though the run stopped
    assert query(data, "SELECT passed FROM quality.check_results WHERE check_name = 'quarantine_share' "
                       "AND asset = 'raw/inference_events'") == [(False,)]


def test_dagster_warn_failure_does_not_stop_downstream(data):
    land_good_day(data)
    land(data, "inference", DT, "part-1.jsonl", [inference(f"x{i}", model="mystery-model") for i in range(5)])
    result = materialize(data)
    assert result.success
    e = check_evaluations(result)[("raw/inference_events", "unpriced_share")]
    assert not e.passed and e.severity == dg.AssetCheckSeverity.WARN
    assert "mystery-model" in e.metadata["examples"].value
    assert "downstream_of_inferences" in materialized(result)


def test_dagster_severity_override_makes_a_warn_check_block(data):
    land_good_day(data)
    land(data, "inference", DT, "part-1.jsonl", [inference(f"x{i}", model="mystery-model") for i in range(5)])
    (data.reference / "validation.yaml").write_text("inference:\n  unpriced_share: {severity: ERROR}\n")
    result = materialize(data)
    assert not result.success
    assert check_evaluations(result)[("raw/inference_events", "unpriced_share")].severity == \
        dg.AssetCheckSeverity.ERROR
    assert "downstream_of_inferences" not in materialized(result)


# --- a process that ran the checks exits quietly -----------------------------------------------------------------

def test_process_that_ran_the_checks_exits_without_nanobind_leak_report(tmp_path):
    """At interpreter exit nanobind reports DuckDB objects that are still alive after shutdown. It printed about 40
    `nanobind: leaked ...` lines after pytest's summary and after CLI output. duckdb_engine's TRY_CAST compiler
    on SQLAlchemy's TryCast keeps DuckDB's types reachable (gx_duckdb._release_duckdb_engine_at_exit). Only a
    fresh interpreter's shutdown shows the report, so the run happens in a subprocess."""
    import subprocess
    import sys
    from pathlib import Path

    for stream in ("inference", "product"):
        (tmp_path / "landing" / stream).mkdir(parents=True)
    script = f"""
import dagster as dg
from aiso_pipeline.definitions import defs
from aiso_pipeline.defs.resources import WarehouseResource
r = dg.materialize(list(defs.assets) + list(defs.asset_checks), partition_key={DT!r},
                   resources={{"warehouse": WarehouseResource(data_dir={str(tmp_path)!r})}},
                   selection=dg.AssetSelection.groups("ingest"), raise_on_error=False)
print("checks evaluated:", len(r.get_asset_check_evaluations()))
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    evaluated = int(proc.stdout.rsplit("checks evaluated:", 1)[1])
    assert evaluated == sum(len(checks) for checks in CHECKS.values())  # the GX checks really ran
    assert "nanobind: leaked" not in proc.stderr, proc.stderr[proc.stderr.find("nanobind"):][:2000]
