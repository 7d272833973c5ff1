"""Monitoring marts: calibration, threshold curve and slice parity, checked against numpy/scipy on generated calls."""
from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta, timezone

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from aiso_pipeline import monitoring, outcomes, warehouse
from aiso_pipeline.config import data_dir
from aiso_pipeline.defs.monitoring import monitoring_marts
from aiso_pipeline.defs.resources import WarehouseResource
from aiso_pipeline.errors import AisoError

DT = "2025-06-03"


def world(n: int = 6000, seed: int = 1, worse: dict | None = None) -> pd.DataFrame:
    """Calls of two models on one feature: confidence beta(4, 2) (with NULLs and exact bin edges), success more
    likely with confidence but not calibrated, sampled rows (weight 4), fallbacks, a language per call, and
    `worse` = {language: success-rate drop} planted."""
    rng = np.random.default_rng(seed)
    conf = np.round(rng.beta(4, 2, n), 3)
    conf[rng.random(n) < 0.05] = np.nan
    edges = rng.random(n) < 0.05
    conf[edges] = rng.choice([0.0, 0.1, 0.3, 0.6, 0.7, 0.9, 1.0], edges.sum())
    lang = rng.choice(["en", "de", "es", "fr"], n, p=[0.5, 0.2, 0.2, 0.1])
    p = np.clip(0.15 + 0.6 * np.nan_to_num(conf, nan=0.5) ** 1.5, 0, 1)
    for value, drop in (worse or {}).items():
        p = np.where(lang == value, p - drop, p)
    fallback = rng.random(n) < 0.06
    df = pd.DataFrame({
        "request_id": [f"r{i}" for i in range(n)],
        "model": rng.choice(["m1", "m2"], n, p=[0.7, 0.3]),
        "feature": "chat",
        "sample_rate": rng.choice([1.0, 0.25], n, p=[0.8, 0.2]),
        "confidence": conf,
        "success": rng.random(n) < p,
        "converted": rng.random(n) < 0.05,
        "is_fallback": fallback,
        "cost_usd": np.where(fallback, 0.0002, rng.uniform(0.001, 0.01, n)),
        "latency_ms": np.round(rng.lognormal(6.5, 0.4, n), 1),
        "language": lang,
    })
    df.loc[rng.random(n) < 0.03, "cost_usd"] = np.nan
    df["weight"] = 1 / df.sample_rate
    return df


def load(data, df: pd.DataFrame, dt: str = DT) -> None:
    ts = datetime.fromisoformat(dt).replace(hour=12, tzinfo=timezone.utc)
    raw = pd.DataFrame({
        "request_id": df.request_id, "timestamp": ts, "model": df.model, "feature": df.feature,
        "confidence": df.confidence, "sample_rate": df.sample_rate, "is_fallback": df.is_fallback,
        "features": [json.dumps({"language": v, "tier": "free"}) for v in df.language],
        "dt": date.fromisoformat(dt), "source_file": "test",
    })
    joined = pd.DataFrame({
        "request_id": df.request_id, "dt": date.fromisoformat(dt), "timestamp": ts, "model": df.model,
        "feature": df.feature, "status": "ok", "is_fallback": df.is_fallback, "latency_ms": df.latency_ms,
        "cost_usd": df.cost_usd, "weight": df.weight, "has_outcome": df.success, "events_attributed": 0,
        "success": df.success, "converted": df.converted, "revenue": 0.0, "window_closed": True,
    })
    with warehouse.connect(data) as con:
        outcomes.ensure_tables(con)
        for table, frame in (("raw.inference_events", raw), ("marts.joined_outcomes", joined)):
            con.register("_f", frame)
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _f")
            con.unregister("_f")


@pytest.fixture
def data(tmp_path):
    return data_dir(tmp_path / "data")


def build(data, config=monitoring.MonitoringConfig(), dt: str = DT):
    with warehouse.connect(data) as con:
        return monitoring.build(con, dt, config)


def query(data, sql: str, *params) -> pd.DataFrame:
    with warehouse.connect(data) as con:
        return con.execute(sql, list(params)).df()


# --------------------------------------------------------------------------------------------------


def test_brier_ece_and_the_reliability_curve_equal_numpy(data):
    df = world()
    load(data, df)
    build(data)
    cal = query(data, "SELECT * FROM marts.calibration WHERE dt = ? ORDER BY model", DT).set_index("model")
    bins = query(data, "SELECT * FROM marts.calibration_bins WHERE dt = ? ORDER BY model, bin", DT)
    for model, g in df[df.confidence.notna()].groupby("model"):
        c, y, w = g.confidence.to_numpy(), g.success.to_numpy(float), g.weight.to_numpy()
        b = np.minimum(np.floor(c * 10), 9).astype(int)  # [0, .1) ... [.9, 1]
        W = w.sum()
        ece = sum(w[b == k].sum() / W * abs(np.average(c[b == k], weights=w[b == k]) -
                                             np.average(y[b == k], weights=w[b == k])) for k in np.unique(b))
        assert cal.loc[model, "n"] == pytest.approx(W, abs=1e-9)
        assert cal.loc[model, "calls"] == len(g)
        assert cal.loc[model, "brier"] == pytest.approx(np.average((c - y) ** 2, weights=w), abs=1e-9)
        assert cal.loc[model, "ece"] == pytest.approx(ece, abs=1e-9)
        mine = bins[bins.model == model].set_index("bin")
        assert list(mine.index) == sorted(np.unique(b))
        for k in np.unique(b):
            assert mine.loc[k, "weight"] == pytest.approx(w[b == k].sum(), abs=1e-9)
            assert mine.loc[k, "mean_confidence"] == pytest.approx(np.average(c[b == k], weights=w[b == k]), abs=1e-9)
            assert mine.loc[k, "success_rate"] == pytest.approx(np.average(y[b == k], weights=w[b == k]), abs=1e-9)
            assert (mine.loc[k, "bin_low"], mine.loc[k, "bin_high"]) == pytest.approx((k / 10, (k + 1) / 10))
    assert 1.0 in set(df.confidence) and bins.bin.max() == 9  # confidence 1.0 sits in the last bin


def test_threshold_curve_equals_numpy(data):
    df = world(seed=2)
    load(data, df)
    build(data)
    curve = query(data, "SELECT * FROM marts.threshold_curve WHERE dt = ? AND model = 'm1' ORDER BY threshold", DT)
    assert list(curve.threshold) == pytest.approx([k / 20 for k in range(1, 20)])
    g = df[(df.model == "m1")]
    fb = g[g.is_fallback & g.cost_usd.notna()]
    unit = np.average(fb.cost_usd, weights=fb.weight)
    a = g[g.confidence.notna() & ~g.is_fallback]
    for _, row in curve.iterrows():
        below = np.floor(a.confidence * 20) < round(row.threshold * 20)
        w = a.weight
        assert row.calls == pytest.approx(w.sum(), abs=1e-9)
        assert row.fallback_share == pytest.approx(w[below].sum() / w.sum(), abs=1e-12)
        assert row.success_rate_above == pytest.approx(np.average(a.success[~below], weights=w[~below]), abs=1e-12)
        priced = below & a.cost_usd.notna()
        saved = (w[priced] * a.cost_usd[priced]).sum() - w[priced].sum() * unit
        assert row.cost_saved_usd == pytest.approx(saved, abs=1e-9)
        assert row.fallback_unit_cost_usd == pytest.approx(unit, abs=1e-12)
    # no fallback served: no basis for the saving
    load(data, world(n=300, seed=3).assign(is_fallback=False), dt="2025-06-04")
    build(data, dt="2025-06-04")
    other = query(data, "SELECT cost_saved_usd, fallbacks_observed FROM marts.threshold_curve WHERE dt = '2025-06-04'")
    assert other.cost_saved_usd.isna().all() and (other.fallbacks_observed == 0).all()


def test_a_planted_worse_slice_is_found_and_an_equal_one_is_not(data):
    df = world(n=20000, seed=4, worse={"es": 0.12})
    load(data, df)
    s = build(data)
    sl = query(data, "SELECT * FROM marts.slice_metrics WHERE dt = ? AND slice_key = 'features.language' "
                     "ORDER BY model, slice_value", DT)
    flagged = set(zip(sl[sl.worse].model, sl[sl.worse].slice_value))
    assert flagged == {("m1", "es"), ("m2", "es")} and s.worse == 2
    # Each row's test, by hand: one-sided, against the rest of its model, beyond the margin; BH over the day.
    tested = sl[sl.tested]
    for _, r in tested.iterrows():
        g = df[df.model == r.model]
        inside = g.language == r.slice_value
        w_s, w_r = g.weight[inside], g.weight[~inside]
        p_s, p_r = np.average(g.success[inside], weights=w_s), np.average(g.success[~inside], weights=w_r)
        v = lambda succ, w: ((succ * w).sum() + 0.5) / (w.sum() + 1)  # noqa: E731
        var = sum(q * (1 - q) * (ww ** 2).sum() / ww.sum() ** 2 for q, ww in
                  ((v(g.success[inside], w_s), w_s), (v(g.success[~inside], w_r), w_r)))
        assert r.success_rate == pytest.approx(p_s, abs=1e-12)
        assert r.rest_success_rate == pytest.approx(p_r, abs=1e-12)
        assert r.gap_vs_model == pytest.approx(p_s - np.average(g.success, weights=g.weight), abs=1e-12)
        assert r.p_value == pytest.approx(sps.norm.cdf((p_s - p_r + 0.02) / np.sqrt(var)), rel=1e-9)
    adjusted = sps.false_discovery_control(tested.p_value.to_numpy(), method="bh")
    assert tested.p_value_adjusted.to_numpy() == pytest.approx(adjusted, rel=1e-12)
    es = sl[(sl.model == "m1") & (sl.slice_value == "es")].iloc[0]
    g = df[(df.model == "m1") & (df.language == "es")]
    assert es.requests == pytest.approx(g.weight.sum()) and es.calls == len(g)
    assert es.conversion_rate == pytest.approx(np.average(g.converted, weights=g.weight), abs=1e-12)
    priced = g[g.cost_usd.notna()]
    assert es.cost_per_success == pytest.approx(
        (priced.weight * priced.cost_usd).sum() / priced.weight[priced.success].sum(), rel=1e-12)
    lat = g.sort_values("latency_ms")
    cum = lat.weight.cumsum()
    assert es.latency_p95_ms == lat.latency_ms[cum >= 0.95 * lat.weight.sum() * (1 - 1e-9)].iloc[0]


def test_no_false_worse_slice_across_aa_worlds(data, tmp_path):
    """Slices that differ only by chance: over 20 worlds x 2 models x 4 languages, none is flagged."""
    flagged = 0
    for seed in range(20):
        d = data_dir(tmp_path / f"w{seed}")
        load(d, world(n=4000, seed=100 + seed))
        flagged += build(d).worse
    assert flagged == 0


def test_rerun_is_idempotent_and_slice_values_are_bounded(data):
    df = world(n=3000, seed=5)
    df["language"] = [f"lang{i % 400}" for i in range(len(df))]  # 400 distinct values
    load(data, df)
    config = monitoring.MonitoringConfig(slice_max_values=10)
    first = build(data, config)
    snapshot = query(data, "SELECT * EXCLUDE (computed_at) FROM marts.slice_metrics ORDER BY ALL")
    again = build(data, config)
    # the same rows (float sums of a parallel aggregation may differ in the last bits)
    pd.testing.assert_frame_equal(
        query(data, "SELECT * EXCLUDE (computed_at) FROM marts.slice_metrics ORDER BY ALL"), snapshot,
        check_exact=False, rtol=1e-12)
    assert first == again
    assert first.values_dropped == len(df[["model", "language"]].drop_duplicates()) - 2 * 10
    counts = query(data, "SELECT model, count(*) n FROM marts.slice_metrics GROUP BY model")
    assert (counts.n == 10).all()


def test_settings_file_errors_are_one_line(data):
    data.reference.mkdir(parents=True)
    for text, message in (("slices: [features.language, 'x; DROP TABLE t']", "neither features.<key> nor"),
                          ("slice_alpha: 2", "slice_alpha: out of range"),
                          ("slice_margin: lots", "slice_margin must be a number"),
                          ("drift_weights: {features.language: -1}", "drift_weights.features.language"),
                          ("drift_reports: sometimes", "drift_reports: one of significant, always, never"),
                          ("colour: red", "unknown setting(s) ['colour']")):
        (data.reference / "monitoring.yaml").write_text(text)
        with pytest.raises(AisoError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
            monitoring.load(data)


def test_the_asset_materializes_the_three_marts_with_charts(data):
    load(data, world(n=3000, seed=6, worse={"es": 0.2}))
    data.reference.mkdir(parents=True, exist_ok=True)
    (data.reference / "monitoring.yaml").write_text("slices: [features.language, features.tier]\n")
    result = dg.materialize([monitoring_marts], partition_key=DT,
                            resources={"warehouse": WarehouseResource(data_dir=str(data.root))})
    assert result.success
    meta = {m.asset_key.to_user_string(): m.metadata for m in
            (e.event_specific_data.materialization for e in result.get_asset_materialization_events())}
    assert set(meta) == {"marts/calibration", "marts/threshold_curve", "marts/slice_metrics"}
    assert "confidence vs outcome" in meta["marts/calibration"]["reliability_diagram"].value
    assert "| 0.5 |" in meta["marts/threshold_curve"]["curve_of_the_busiest"].value
    assert meta["marts/slice_metrics"]["worse"].value >= 1
    keys = query(data, "SELECT DISTINCT slice_key FROM marts.slice_metrics ORDER BY 1").slice_key.tolist()
    assert keys == ["features.language", "features.tier"]


# --------------------------------------------------------------------------------------------------
# A generated drift episode through the whole pipeline
# --------------------------------------------------------------------------------------------------


def test_a_generated_drift_episode_alerts_on_its_first_day_and_quiet_days_do_not(tmp_path):
    from aiso_pipeline import alerts
    from aiso_pipeline.generate import generate
    from aiso_pipeline.runner import run_days

    data = data_dir(tmp_path / "data")
    end = date.today() - timedelta(days=1)
    start = end - timedelta(days=7)
    truth = generate(data.root, start, end, seed=5, inferences_per_day=1500, users=400).truth["drift"]
    began = time.monotonic()
    # as `aiso demo` replays its days: each day's marts run is stamped as its nightly (02:00 UTC after the day)
    run_days(data, [(start + timedelta(days=i)).isoformat() for i in range(8)], replay=True)
    took_hours = (time.monotonic() - began) / 3600
    import duckdb
    con = duckdb.connect(str(data.warehouse), read_only=True)
    rows = con.execute("""SELECT dt, model, metric, severity, episode_start, detection_delay_hours,
                                 epoch(detected_at) AS detected FROM marts.anomalies WHERE kind = 'drift'
                          ORDER BY dt, metric""").df()
    calibrated = con.execute("SELECT count(*) FROM marts.calibration").fetchall()[0][0]
    con.close()
    drift_day = date.fromisoformat(truth["day"])
    assert calibrated > 0
    before = rows[rows.dt.dt.date < drift_day]
    assert before.empty, before[["dt", "model", "metric", "severity"]].to_string()  # quiet days: nothing
    first = rows[rows.dt.dt.date == drift_day]
    assert set(first.model) == {truth["model"]}  # the drifted model alone, on its first drifted partition
    planted = {f"drift:features.{c}" for c in truth["columns"] if c != "input_tokens"} | {"drift:input_tokens"}
    assert len(set(first.metric) & planted) >= 2 and set(first.metric) - {"dataset_drift"} <= planted
    assert (first.episode_start.dt.date == drift_day).all()
    end_of_day = datetime.combine(drift_day + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)
    expected = (first.detected.iloc[0] - end_of_day.timestamp()) / 3600
    assert first.detection_delay_hours.iloc[0] == pytest.approx(expected, abs=1e-6)
    assert 2.0 <= first.detection_delay_hours.iloc[0] <= 2.0 + took_hours  # the tick plus the run's own time
    later = rows[rows.dt.dt.date > drift_day]
    continuing = later[later.metric.isin(first.metric)]
    assert (continuing.episode_start.dt.date == drift_day).all()  # the planted columns continue their episode
    assert set(later.model) <= {truth["model"]}
    table = [dict(r, anomaly_id=str(i), kind="drift", feature=None, value=0.5, threshold=0.1, baseline=None,
                  z_score=None, score=None, dt=r["dt"].date(), episode_start=r["episode_start"].date())
             for i, r in rows.iterrows()]
    units = alerts.alert_units(table)
    assert [(u[1], u[3][0]["model"]) for u in units] == [(drift_day, truth["model"])]  # one alert, that day
