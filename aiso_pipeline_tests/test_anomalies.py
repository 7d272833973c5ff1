"""marts.anomalies: a robust trailing baseline flags injected spikes and drops, and stays quiet on a quiet week."""
import random
from datetime import date, timedelta

import dagster as dg
import duckdb
import pytest

from aiso_pipeline import anomalies, warehouse
from aiso_pipeline.defs.anomalies import marts_anomalies
from aiso_pipeline.defs.resources import WarehouseResource

START = date(2025, 6, 1)
DAYS = 21  # three weeks: 2025-06-01 .. 2025-06-21
LAST = (START + timedelta(days=DAYS - 1)).isoformat()

# The contract columns of the marts the detector reads (CONTRACT section 7), plus window_closed.
COST_DAILY = """CREATE TABLE marts.cost_daily (dt DATE, model VARCHAR, feature VARCHAR, requests DOUBLE,
    input_tokens DOUBLE, output_tokens DOUBLE, cost_usd DOUBLE, unpriced_requests DOUBLE, cost_per_1k_requests DOUBLE,
    successes DOUBLE, cost_per_success DOUBLE, conversions DOUBLE, cost_per_conversion DOUBLE, error_rate DOUBLE,
    fallback_rate DOUBLE, latency_p50_ms DOUBLE, latency_p95_ms DOUBLE, latency_p99_ms DOUBLE, window_closed BOOLEAN)"""
COVERAGE = """CREATE TABLE marts.outcome_coverage (dt DATE, model VARCHAR, feature VARCHAR, inferences DOUBLE,
    joined DOUBLE, join_rate DOUBLE, window_closed BOOLEAN)"""
DRIFT = """CREATE TABLE marts.drift_summary (dt DATE, model VARCHAR, columns_checked BIGINT, columns_drifted BIGINT,
    share_drifted DOUBLE, dataset_drift BOOLEAN)"""


def day(i: int) -> str:
    return (START + timedelta(days=i)).isoformat()


def quiet_marts(con, seed: int = 7, combos=(("gpt-4o", "chat"), ("gpt-4o", "search"), ("claude", "chat")),
                last_window_open: bool = True, days: int = DAYS, weekend: float = 1.0):
    """Ordinary days ending on LAST: ±4% noise on volume, cost and latency, error rates around 2%, weekend traffic
    × `weekend`. The last day's attribution window is still open (as on the night it is first computed)."""
    first = DAYS - days
    rng = random.Random(seed)
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    for ddl in (COST_DAILY, COVERAGE, DRIFT):
        con.execute(ddl)
    for i in range(first, DAYS):
        closed = not (last_window_open and i == DAYS - 1)
        is_weekend = (START + timedelta(days=i)).weekday() >= 5
        for model, feature in combos:
            requests = 1000 * (weekend if is_weekend else 1.0) * rng.uniform(0.96, 1.04)
            cost = requests * 0.002 * rng.uniform(0.97, 1.03)
            successes = requests * (0.6 if closed else 0.35) * rng.uniform(0.98, 1.02)
            con.execute("INSERT INTO marts.cost_daily BY NAME SELECT ?::DATE dt, ? model, ? feature, ? requests, "
                        "? cost_usd, ? successes, ? cost_per_success, ? error_rate, ? fallback_rate, "
                        "? latency_p95_ms, ? window_closed",
                        [day(i), model, feature, requests, cost, successes, cost / successes,
                         rng.uniform(0.015, 0.025), rng.uniform(0.005, 0.01), 900 * rng.uniform(0.96, 1.04), closed])
            join_rate = rng.uniform(0.95, 0.97) if closed else rng.uniform(0.5, 0.6)  # open: outcomes still coming
            con.execute("INSERT INTO marts.outcome_coverage VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [day(i), model, feature, requests, requests * join_rate, join_rate, closed])
        for model in {m for m, _ in combos}:
            con.execute("INSERT INTO marts.drift_summary VALUES (?, ?, 8, 0, 0.0, false)", [day(i), model])


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


def found(con, dt: str = LAST) -> list[tuple]:
    return con.execute("SELECT kind, model, feature, metric, severity FROM marts.anomalies WHERE dt = ? "
                       "ORDER BY ALL", [dt]).fetchall()


def test_a_quiet_three_weeks_raise_nothing(con):
    quiet_marts(con)
    for i in range(anomalies.Thresholds().min_history_days, DAYS):  # every day that has enough history
        s = anomalies.detect(con, day(i))
        assert s.anomalies == 0, (day(i), found(con, day(i)))
        assert s.missing_sources == ()


def test_quiet_for_many_seeds(con):
    """No false alarm across 20 differently-noised histories (420 model × feature × metric days)."""
    for seed in range(20):
        con.execute("DROP SCHEMA IF EXISTS marts CASCADE")
        quiet_marts(con, seed=seed)
        assert anomalies.detect(con, LAST).anomalies == 0, (seed, found(con))


def test_weekly_cycles_need_weekly_seasonality(con):
    quiet_marts(con, days=70, weekend=0.6)  # ten weeks of B2B traffic: weekends at 60%; LAST is a Saturday
    assert date.fromisoformat(LAST).weekday() == 5
    anomalies.detect(con, LAST)
    assert {metric for _, _, _, metric, _ in found(con)} == {"requests"}  # plain: "a drop" every weekend
    weekly = anomalies.Thresholds(seasonality="weekly", window_days=8)
    assert anomalies.detect(con, LAST, weekly).anomalies == 0
    con.execute("UPDATE marts.cost_daily SET requests = requests * 0.3 WHERE dt = ? AND model = 'claude'", [LAST])
    anomalies.detect(con, LAST, weekly)
    assert found(con) == [("drop", "claude", "chat", "requests", "critical")]


def test_injected_spikes_and_drops_are_flagged(con):
    quiet_marts(con)
    con.execute("UPDATE marts.cost_daily SET cost_usd = cost_usd * 4 WHERE dt = ? AND model = 'gpt-4o' "
                "AND feature = 'chat'", [LAST])
    con.execute("UPDATE marts.cost_daily SET latency_p95_ms = 1200, error_rate = 0.05 WHERE dt = ? AND "
                "model = 'claude'", [LAST])
    con.execute("DELETE FROM marts.cost_daily WHERE dt = ? AND feature = 'search'", [LAST])  # traffic stopped
    s = anomalies.detect(con, LAST)
    assert found(con) == [
        ("drop", "gpt-4o", "search", "requests", "critical"),
        ("spike", "claude", "chat", "error_rate", "critical"),
        ("spike", "claude", "chat", "latency_p95_ms", "critical"),
        ("spike", "gpt-4o", "chat", "cost_usd", "critical"),
    ]
    assert s.anomalies == 4 and s.critical == 4
    row = con.execute("""SELECT value, baseline, threshold, z_score, history_days, length(anomaly_id), detected_at
                         FROM marts.anomalies WHERE metric = 'cost_usd'""").fetchone()
    value, baseline, threshold, z, history, id_len, detected_at = row
    assert value > threshold > baseline and z >= 6 and history == 14 and id_len == 16 and detected_at is not None


def test_a_request_spike_and_drop_in_volume(con):
    quiet_marts(con)
    con.execute("UPDATE marts.cost_daily SET requests = requests * 3 WHERE dt = ? AND feature = 'search'", [LAST])
    con.execute("UPDATE marts.cost_daily SET requests = requests * 0.5 WHERE dt = ? AND model = 'claude'", [LAST])
    anomalies.detect(con, LAST)
    assert [(k, m, f, metric) for k, m, f, metric, _ in found(con) if metric == "requests"] == [
        ("drop", "claude", "chat", "requests"), ("spike", "gpt-4o", "search", "requests")]


def test_outcome_metrics_wait_for_the_window_to_close(con):
    quiet_marts(con)  # the last day's join rate is ~55% and its cost per success high: its window is still open
    anomalies.detect(con, LAST)
    assert found(con) == []
    # once closed, a real join-rate drop and cost-per-success rise are flagged
    con.execute("UPDATE marts.outcome_coverage SET window_closed = true, join_rate = 0.7 WHERE dt = ? AND "
                "model = 'claude'", [LAST])
    con.execute("UPDATE marts.cost_daily SET window_closed = true WHERE dt = ?", [LAST])
    anomalies.detect(con, LAST)
    metrics = {(m, metric) for _, m, _, metric, _ in found(con)}
    assert ("claude", "join_rate") in metrics
    assert ("gpt-4o", "cost_per_success") in metrics  # successes were still counted as open: 0.35 vs 0.6


def test_dataset_drift_is_an_anomaly(con):
    quiet_marts(con)
    con.execute("UPDATE marts.drift_summary SET columns_drifted = 5, share_drifted = 0.625, dataset_drift = true "
                "WHERE dt = ? AND model = 'claude'", [LAST])
    anomalies.detect(con, LAST)
    assert found(con) == [("drift", "claude", None, "dataset_drift", "critical")]


def test_new_series_and_low_volume_are_not_judged(con):
    quiet_marts(con)
    for i in range(DAYS - 4, DAYS):  # a feature launched three days before today: 3 days of history
        con.execute("INSERT INTO marts.cost_daily BY NAME SELECT ?::DATE dt, 'gpt-4o' model, 'new' feature, "
                    "? requests, 1.0 cost_usd, 0.0 error_rate, true window_closed", [day(i), 100 * (i + 1)])
    # a tiny feature with a 50% error rate on 6 requests: noise, not an incident
    for i in range(DAYS):
        con.execute("INSERT INTO marts.cost_daily BY NAME SELECT ?::DATE dt, 'claude' model, 'tiny' feature, "
                    "6.0 requests, ? error_rate, true window_closed", [day(i), 0.5 if i == DAYS - 1 else 0.0])
    anomalies.detect(con, LAST)
    assert [r for r in found(con) if r[2] in ("new", "tiny")] == []


def test_thresholds_are_configurable(con):
    quiet_marts(con)
    con.execute("""UPDATE marts.cost_daily SET cost_usd = 1.15 * (SELECT median(cost_usd) FROM marts.cost_daily
                   WHERE model = 'claude' AND dt < ?) WHERE dt = ? AND model = 'claude'""", [LAST, LAST])  # z ≈ 3
    assert anomalies.detect(con, LAST).anomalies == 0
    assert anomalies.detect(con, LAST, anomalies.Thresholds(warn_z=2.0, critical_z=3.0)).anomalies == 1
    with pytest.raises(ValueError, match="warn_z"):
        anomalies.Thresholds(warn_z=7, critical_z=6)


def test_rerun_is_idempotent_and_keeps_ids(con):
    quiet_marts(con)
    con.execute("UPDATE marts.cost_daily SET cost_usd = cost_usd * 4 WHERE dt = ?", [LAST])
    anomalies.detect(con, LAST)
    first = con.execute("SELECT * FROM marts.anomalies ORDER BY anomaly_id").fetchall()
    anomalies.detect(con, LAST)
    assert con.execute("SELECT * FROM marts.anomalies ORDER BY anomaly_id").fetchall() == first
    assert len(first) == 3
    assert len({r[-2] for r in first}) == 3  # distinct ids


def test_only_the_trailing_window_is_read(con):
    quiet_marts(con)
    con.execute("UPDATE marts.cost_daily SET cost_usd = cost_usd * 4 WHERE dt = ? AND model = 'claude'", [LAST])
    # history far outside the 14-day window, wild enough to hide the spike if it were read
    con.execute("INSERT INTO marts.cost_daily BY NAME SELECT DATE '2025-01-01' + i::INTEGER AS dt, 'claude' model, "
                "'chat' feature, 1000.0 requests, 1000.0 * (i % 7) AS cost_usd, true window_closed "
                "FROM range(60) t(i)")
    anomalies.detect(con, LAST)
    assert found(con) == [("spike", "claude", "chat", "cost_usd", "critical")]


def test_missing_marts_are_reported_not_fatal(con):
    con.execute("CREATE SCHEMA marts")
    s = anomalies.detect(con, LAST)
    assert s.anomalies == 0
    assert s.missing_sources == ("marts.cost_daily", "marts.outcome_coverage", "marts.drift_summary")


def test_the_asset_materializes_a_partition_with_metadata(data):
    with warehouse.connect(data) as c:
        quiet_marts(c)
        c.execute("UPDATE marts.cost_daily SET cost_usd = cost_usd * 4 WHERE dt = ? AND model = 'claude'", [LAST])
    result = dg.materialize([marts_anomalies], partition_key=LAST,
                            resources={"warehouse": WarehouseResource(data_dir=str(data.root))},
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success
    meta = result.asset_materializations_for_node("marts__anomalies")[0].metadata
    assert meta["anomalies"].value == 1 and meta["critical"].value == 1
    assert meta["dagster/row_count"].value == 1
    assert "cost_usd" in meta["found"].value
