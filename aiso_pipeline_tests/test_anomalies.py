"""marts.anomalies: a robust trailing baseline flags injected spikes and drops, and stays quiet on a quiet week."""
import random
from datetime import date, timedelta

import dagster as dg
import duckdb
import pytest

from aiso_pipeline import alerts, anomalies, monitoring, warehouse
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
    monitoring.ensure_tables(con)  # calibration and slice_metrics
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
            # confidence is calibrated within sampling noise: ECE ~ 0.03 on 1000 calls
            con.execute("INSERT INTO marts.calibration (dt, model, feature, n, calls, brier, ece, window_closed) "
                        "VALUES (?, ?, ?, ?, 1000, 0.2, ?, ?)", [day(i), model, feature, requests,
                                                                rng.uniform(0.02, 0.04), closed])
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


def test_dataset_drift_is_an_anomaly_when_its_columns_drifted_significantly(con):
    quiet_marts(con)
    con.execute(DRIFT_METRICS)
    con.execute("UPDATE marts.drift_summary SET columns_drifted = 5, share_drifted = 0.625, dataset_drift = true "
                "WHERE dt = ? AND model IN ('claude', 'gpt-4o')", [LAST])
    for i, column in enumerate(["input_tokens", "output_tokens", "latency_ms", "confidence", "status"]):
        _drift(con, DAYS - 1, column, "wasserstein", 0.2, 0.1, 1e-9 if i < 4 else 0.5, model="claude")
        _drift(con, DAYS - 1, column, "wasserstein", 0.2, 0.1, 1e-9 if i < 3 else 0.5)  # 3 of 8: sampling noise
    anomalies.detect(con, LAST)
    got = [r for r in found(con) if r[3] == "dataset_drift"]
    assert got == [("drift", "claude", None, "dataset_drift", "critical")]
    share = con.execute("SELECT value FROM marts.anomalies WHERE metric = 'dataset_drift'").fetchall()
    assert share == [(0.5,)]  # 4 of the 8 checked columns drifted significantly


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
    ids = con.execute("SELECT count(DISTINCT anomaly_id) FROM marts.anomalies").fetchall()[0][0]
    assert ids == 3  # distinct ids


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
    assert s.missing_sources == ("marts.cost_daily", "marts.outcome_coverage", "marts.calibration",
                                 "marts.drift_summary", "marts.slice_metrics")


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


# --------------------------------------------------------------------------------------------------
# Calibration, parity and column drift (issue 18)
# --------------------------------------------------------------------------------------------------


def test_calibration_error_rising_past_its_baseline_is_an_anomaly_once_the_window_closed(con):
    quiet_marts(con, last_window_open=False)
    con.execute("UPDATE marts.calibration SET ece = 0.15 WHERE dt = ? AND model = 'claude'", [LAST])
    anomalies.detect(con, LAST)
    assert found(con) == [("spike", "claude", "chat", "ece", "critical")]
    con.execute("UPDATE marts.calibration SET window_closed = false WHERE dt = ?", [LAST])
    anomalies.detect(con, LAST)
    assert found(con) == []  # successes still arriving: not judged yet


def _slice(con, value: str, rate: float, rest: float, worse: bool):
    con.execute("""INSERT INTO marts.slice_metrics (dt, model, feature, slice_key, slice_value, requests, calls,
                   success_rate, rest_success_rate, margin, tested, worse, window_closed)
                   VALUES (?, 'gpt-4o', 'chat', 'features.language', ?, 800, 800, ?, ?, 0.02, true, ?, true)""",
                [LAST, value, rate, rest, worse])


def test_a_worse_slice_is_a_parity_anomaly_naming_the_slice(con):
    quiet_marts(con)
    _slice(con, "es", 0.40, 0.60, True)
    _slice(con, "de", 0.57, 0.60, True)
    _slice(con, "fr", 0.50, 0.60, False)  # not significant after BH: nothing
    anomalies.detect(con, LAST)
    assert found(con) == [("parity", "gpt-4o", "chat", "success_rate[features.language=de]", "warning"),
                          ("parity", "gpt-4o", "chat", "success_rate[features.language=es]", "critical")]
    row = con.execute("SELECT value, baseline, threshold FROM marts.anomalies WHERE metric LIKE '%=es]'").fetchall()
    assert row == [(0.40, 0.60, pytest.approx(0.58))]


DRIFT_METRICS = """CREATE TABLE IF NOT EXISTS marts.drift_metrics (dt DATE, model VARCHAR, column_name VARCHAR,
    method VARCHAR, statistic DOUBLE, threshold DOUBLE, drifted BOOLEAN, shift_p_value DOUBLE)"""


def _drift(con, i: int, column: str, method: str, statistic: float, threshold: float, p: float, model="gpt-4o"):
    con.execute("INSERT INTO marts.drift_metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [day(i), model, column, method, statistic, threshold,
                 statistic >= threshold if method in ("wasserstein", "jensenshannon") else statistic < threshold, p])


def test_drifted_columns_alert_when_the_shift_is_significant_weighted_and_grouped(con):
    quiet_marts(con)
    con.execute(DRIFT_METRICS)
    d = DAYS - 3
    _drift(con, d, "features.prompt_chars", "wasserstein", 1.11, 0.1, 1e-30)  # score 11.1: critical
    _drift(con, d, "features.language", "jensenshannon", 0.15, 0.1, 1e-9)     # score 1.5: warning
    _drift(con, d, "input_tokens", "wasserstein", 0.127, 0.1, 0.2)            # sampling noise: no anomaly
    _drift(con, d, "confidence", "ks", 1e-6, 0.05, 1e-6)                      # log p / log 0.05 = 4.6: critical
    _drift(con, d, "status", "jensenshannon", 0.5, 0.1, 1e-40)                # weight 0: never alone
    _drift(con, d, "output_tokens", "wasserstein", 0.09, 0.1, 1e-12)          # under Evidently's threshold
    weights = monitoring.MonitoringConfig(drift_weights={"status": 0, "features.language": 2.5})
    anomalies.detect(con, day(d), monitoring=weights)
    got = con.execute("SELECT metric, severity, round(score, 2), episode_start FROM marts.anomalies WHERE dt = ? "
                      "ORDER BY metric", [day(d)]).fetchall()
    start = START + timedelta(days=d)
    assert got == [("dataset_drift", "critical", None, start),  # 4 of 8 columns, status (weight 0) included
                   ("drift:confidence", "critical", round(4.6117, 2), start),
                   ("drift:features.language", "critical", 3.75, start),
                   ("drift:features.prompt_chars", "critical", 11.1, start)]
    delay = con.execute("SELECT DISTINCT detection_delay_hours, epoch(detected_at) FROM marts.anomalies "
                        "WHERE dt = ?", [day(d)]).fetchall()
    end_of_day = (start + timedelta(days=1)).strftime("%s")
    assert len(delay) == 1 and delay[0][0] == pytest.approx((delay[0][1] - int(end_of_day)) / 3600, abs=1e-6)

    # The next days: prompt length still drifts (the reference now holds the drifted day), language again two
    # days later, and a column that had not drifted yet: all continue the model's open episode. Another model
    # starts its own.
    _drift(con, d + 1, "features.prompt_chars", "wasserstein", 0.8, 0.1, 1e-20)
    _drift(con, d + 2, "features.language", "jensenshannon", 0.2, 0.1, 1e-9)
    _drift(con, d + 2, "latency_ms", "wasserstein", 0.35, 0.1, 1e-9)
    _drift(con, d + 2, "latency_ms", "wasserstein", 0.35, 0.1, 1e-9, model="claude")
    for i in (d + 1, d + 2):
        anomalies.detect(con, day(i), monitoring=weights)
    rows = con.execute("SELECT dt, model, metric, episode_start, detection_delay_hours FROM marts.anomalies "
                       "WHERE kind = 'drift' AND dt > ? ORDER BY dt, model DESC, metric", [day(d)]).fetchall()
    assert [r[:4] for r in rows] == [
        (start + timedelta(days=1), "gpt-4o", "drift:features.prompt_chars", start),
        (start + timedelta(days=2), "gpt-4o", "drift:features.language", start),
        (start + timedelta(days=2), "gpt-4o", "drift:latency_ms", start),
        (start + timedelta(days=2), "claude", "drift:latency_ms", start + timedelta(days=2))]
    assert rows[0][4] == rows[1][4] == rows[2][4] == delay[0][0]  # the episode's delay: hours to its first detection

    # Alerts: one per model and day, for the columns that open an episode.
    columns = ["anomaly_id", "dt", "kind", "model", "feature", "metric", "value", "baseline", "threshold",
               "severity", "z_score", "score", "episode_start"]
    table = [dict(zip(columns, r)) for r in con.execute(
        f"SELECT {', '.join(columns)} FROM marts.anomalies WHERE kind = 'drift' ORDER BY dt, metric").fetchall()]
    units = alerts.alert_units(table)
    assert [(u[1], u[2], sorted(r["metric"] for r in u[3])) for u in units] == [
        (start, "critical", ["dataset_drift", "drift:confidence", "drift:features.language",
                             "drift:features.prompt_chars"]),
        (start + timedelta(days=2), "critical", ["drift:latency_ms"])]
    assert units[1][3][0]["model"] == "claude"
    alert = alerts.drift_alert(units[0][3])
    assert alert.title == f"drift on gpt-4o for {start}: 50.0% of input columns drifted (dataset drift)"
    assert alert.details.splitlines()[0] == "features.prompt_chars: 1.11 against threshold 0.1 (critical)"
    assert alerts.drift_alert(units[1][3]).title == \
        f"drift on claude for {start + timedelta(days=2)}: 1 input column drifted"


def test_a_drift_free_fortnight_of_noisy_columns_raises_nothing(con):
    """Evidently's rule flags sampling noise on small models (normed Wasserstein 0.127 on 270 calls); without a
    significant shift none of it becomes an anomaly."""
    quiet_marts(con)
    con.execute(DRIFT_METRICS)
    for i in range(DAYS):
        _drift(con, i, "input_tokens", "wasserstein", 0.127, 0.1, 0.03)
        _drift(con, i, "confidence", "wasserstein", 0.109, 0.1, 0.2)
        _drift(con, i, "features.language", "chisquare", 0.01, 0.05, 0.02)
    for i in range(DAYS):
        s = anomalies.detect(con, day(i))
        assert s.anomalies == 0, found(con, day(i))
