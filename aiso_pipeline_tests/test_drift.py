"""Drift engine: detection on synthetic days, Evidently's default method choice, agreement with Evidently 0.7.23,
and the edge cases (empty reference, all-NULL columns, NaN / infinity, pinned windows)."""
from __future__ import annotations

import datetime as dt
import json

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from aiso_pipeline.drift import DriftConfig, compute_drift, sample_for_report
from aiso_pipeline.drift import stattests

D = dt.date
REF_DAYS = [D(2025, 6, 1) + dt.timedelta(days=i) for i in range(8)]  # 06-01 .. 06-08, all stable
STABLE, SHIFTED = D(2025, 6, 8), D(2025, 6, 9)
COLUMNS = ["dt", "model", "latency_ms", "input_tokens", "output_tokens", "confidence", "status", "is_fallback",
           "features"]


def _events(rng, day, model, n, shifted=False, **overrides) -> pd.DataFrame:
    """n inference events of one model and day; `shifted` moves latency, the status mix and adds categories."""
    language = rng.choice(["en", "de", "es", "fr"], n, p=[0.4, 0.3, 0.1, 0.2] if shifted else [0.5, 0.3, 0.2, 0.0])
    feats = []
    for i in range(n):
        if rng.random() < 0.02:
            feats.append(None)  # a row without features
            continue
        feats.append(json.dumps({"prompt_chars": int(rng.integers(50, 4000)), "language": str(language[i]),
                                 "docs": int(rng.integers(0, 4)), "cached": bool(rng.random() < 0.3)}))
    confidence = rng.beta(5, 2, n)
    confidence[rng.random(n) < 0.05] = np.nan  # NULL in the table
    df = pd.DataFrame({
        "dt": day, "model": model,
        "latency_ms": np.exp(rng.normal(6.0 + (0.8 if shifted else 0.0), 0.5, n)),
        "input_tokens": rng.poisson(800, n), "output_tokens": rng.poisson(200, n),
        "confidence": confidence,
        "status": rng.choice(["ok", "error", "timeout"], n, p=[0.7, 0.2, 0.1] if shifted else [0.97, 0.03, 0.0]),
        "is_fallback": rng.random(n) < 0.1,
        "features": feats,
    })
    for k, v in overrides.items():
        df[k] = v
    return df[COLUMNS]


def _load(con, frames):
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute("""CREATE OR REPLACE TABLE raw.inference_events (dt DATE, model VARCHAR, latency_ms DOUBLE,
                   input_tokens BIGINT, output_tokens BIGINT, confidence DOUBLE, status VARCHAR,
                   is_fallback BOOLEAN, features JSON)""")
    data = pd.concat(frames, ignore_index=True)
    con.execute("""INSERT INTO raw.inference_events
                   SELECT dt, model, latency_ms, input_tokens, output_tokens,
                          CASE WHEN isnan(confidence) THEN NULL ELSE confidence END, status, is_fallback,
                          CAST(features AS JSON) FROM data""")


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    """big: 1500 rows a day (reference > 1000); small: 100 a day (reference <= 1000); newbie: only on SHIFTED;
    sparse: confidence all NULL on SHIFTED and a feature key seen only on SHIFTED."""
    rng = np.random.default_rng(20250609)
    frames = []
    for day in REF_DAYS:
        frames += [_events(rng, day, "big", 1500), _events(rng, day, "small", 100), _events(rng, day, "sparse", 200)]
    frames += [_events(rng, SHIFTED, "big", 1500, shifted=True), _events(rng, SHIFTED, "small", 100, shifted=True),
               _events(rng, SHIFTED, "newbie", 50)]
    sparse = _events(rng, SHIFTED, "sparse", 200, confidence=np.nan)
    sparse["features"] = [json.dumps({"beta_flag": "on"})] * len(sparse)
    frames.append(sparse)
    c = duckdb.connect(str(tmp_path_factory.mktemp("drift") / "drift.duckdb"))
    _load(c, frames)
    yield c
    c.close()


def _by_column(metrics, model):
    return {r["column_name"]: r for r in metrics if r["model"] == model}


def _summary(summary, model):
    return next(s for s in summary if s["model"] == model)


# ---------------------------------------------------------------------------------------------------------------
# detection


def test_stable_day_is_not_flagged(con):
    metrics, summary = compute_drift(con, STABLE)
    big = _by_column(metrics, "big")
    assert {r["method"] for r in big.values()} == {"wasserstein", "jensenshannon"}
    assert not any(r["drifted"] for r in big.values()), {c: r["statistic"] for c, r in big.items()}
    assert _summary(summary, "big")["dataset_drift"] is False
    assert _summary(summary, "small")["dataset_drift"] is False
    assert big["latency_ms"]["reference_rows"] == 7 * 1500 and big["latency_ms"]["current_rows"] == 1500
    assert (big["latency_ms"]["reference_start"], big["latency_ms"]["reference_end"]) == (D(2025, 6, 1), D(2025, 6, 7))


def test_injected_shifts_are_detected(con):
    metrics, summary = compute_drift(con, SHIFTED)
    big = _by_column(metrics, "big")
    drifted = {c for c, r in big.items() if r["drifted"]}
    # latency mean shift (numeric), status mix + new 'timeout' category, new 'fr' language
    assert drifted == {"latency_ms", "status", "features.language"}, {c: r["statistic"] for c, r in big.items()}
    assert big["latency_ms"]["method"] == "wasserstein" and big["latency_ms"]["statistic"] > 1
    assert big["status"]["method"] == "jensenshannon" and big["features.language"]["method"] == "jensenshannon"
    s = _summary(summary, "big")
    assert (s["columns_checked"], s["columns_drifted"]) == (10, 3)
    assert s["share_drifted"] == pytest.approx(0.3) and s["dataset_drift"] is False
    # the dataset threshold is configurable
    _, summary = compute_drift(con, SHIFTED, DriftConfig(dataset_drift_share=0.3))
    assert _summary(summary, "big")["dataset_drift"] is True


def test_thresholds_are_configurable(con):
    metrics, _ = compute_drift(con, SHIFTED, DriftConfig(wasserstein_threshold=100.0, ks_threshold=0.0))
    assert not _by_column(metrics, "big")["latency_ms"]["drifted"]
    assert _by_column(metrics, "big")["latency_ms"]["threshold"] == 100.0
    assert not _by_column(metrics, "small")["latency_ms"]["drifted"]


def test_small_reference_uses_ks_chisquare_and_z(con):
    metrics, _ = compute_drift(con, SHIFTED)
    small = _by_column(metrics, "small")
    assert small["latency_ms"]["reference_values"] == 700
    assert {c: r["method"] for c, r in small.items()} == {
        "latency_ms": "ks", "input_tokens": "ks", "output_tokens": "ks", "confidence": "ks",
        "status": "chisquare",            # ok / error / timeout: 3 values
        "is_fallback": "z",               # 2 values
        "features.prompt_chars": "ks",
        "features.language": "chisquare",
        "features.docs": "chisquare",     # numeric with 4 values: categorical
        "features.cached": "z",
    }
    assert small["latency_ms"]["drifted"] and small["latency_ms"]["p_value"] < 1e-6
    assert small["status"]["drifted"] and small["status"]["statistic"] == 0.0  # 'timeout' never seen before
    assert small["latency_ms"]["statistic"] == small["latency_ms"]["p_value"]
    # on the stable day status has only two values on either side: z test
    metrics, _ = compute_drift(con, STABLE)
    assert _by_column(metrics, "small")["status"]["method"] == "z"


def test_numeric_with_few_values_is_categorical(con):
    metrics, _ = compute_drift(con, SHIFTED)
    docs = _by_column(metrics, "big")["features.docs"]
    assert (docs["declared_type"], docs["column_type"], docs["method"]) == ("numerical", "categorical",
                                                                            "jensenshannon")
    assert docs["distinct_values"] == 4
    assert _by_column(metrics, "big")["features.prompt_chars"]["column_type"] == "numerical"
    # the same answer when the column is forced onto a coarse grid (step > 1) and then recounted exactly
    forced, _ = compute_drift(con, SHIFTED, DriftConfig(wasserstein_tolerance=10.0))
    f = _by_column(forced, "big")["features.docs"]
    assert (f["method"], f["statistic"]) == ("jensenshannon", pytest.approx(docs["statistic"], abs=1e-12))


def test_double_column_with_few_values_is_counted_exactly(tmp_path):
    """A DOUBLE column with 3 values lands in 3 grid buckets: it is recounted (finer, then exactly) and gets the
    categorical test on its exact values, as Evidently does."""
    rng = np.random.default_rng(5)
    levels = np.array([0.25, 0.5, 0.75])
    frames = [_events(rng, day, "m", 1500, confidence=rng.choice(levels, 1500)) for day in REF_DAYS[:7]]
    frames.append(_events(rng, STABLE, "m", 1500, confidence=rng.choice(levels, 1500, p=[0.5, 0.3, 0.2])))
    c = duckdb.connect(str(tmp_path / "few.duckdb"))
    _load(c, frames)
    metrics, _ = compute_drift(c, STABLE)
    conf = _by_column(metrics, "m")["confidence"]
    assert (conf["declared_type"], conf["column_type"], conf["method"], conf["distinct_values"]) == (
        "numerical", "categorical", "jensenshannon", 3)
    ref, cur = sample_for_report(c, STABLE, "m", max_rows=100_000)
    r, k = ref["confidence"].value_counts(), cur["confidence"].value_counts()
    from scipy.spatial import distance
    expected = distance.jensenshannon([r.get(v, 0) / r.sum() for v in levels], [k.get(v, 0) / k.sum() for v in levels])
    assert conf["statistic"] == pytest.approx(expected, abs=1e-12) and conf["drifted"]


def test_bad_grid_estimate_is_recounted(con, monkeypatch):
    """A sampled std 1000x too large makes the first grid far too coarse: the error bound catches it and the
    column is recounted, so the statistic still lands within the tolerance."""
    from aiso_pipeline.drift import engine

    exact, _ = compute_drift(con, SHIFTED, DriftConfig(wasserstein_tolerance=1e-9))
    real = engine._scale
    monkeypatch.setattr(engine, "_scale",
                        lambda *a, **k: {key: (n, sd * 1000) for key, (n, sd) in real(*a, **k).items()})
    calls = []
    real_recount = engine._recount
    monkeypatch.setattr(engine, "_recount", lambda *a, **k: calls.append(a[5]) or real_recount(*a, **k))
    coarse, _ = compute_drift(con, SHIFTED)
    assert ("big", "latency_ms") in calls[0]
    for column in ("latency_ms", "confidence", "features.prompt_chars"):
        assert _by_column(coarse, "big")[column]["statistic"] == pytest.approx(
            _by_column(exact, "big")[column]["statistic"], abs=1e-3)


# ---------------------------------------------------------------------------------------------------------------
# edge cases


def test_empty_reference(con):
    metrics, summary = compute_drift(con, SHIFTED)
    newbie = _by_column(metrics, "newbie")
    assert newbie and all(r["statistic"] is None and r["drifted"] is False and r["reason"] == "empty_reference"
                          for r in newbie.values())
    assert newbie["latency_ms"]["reference_rows"] == 0 and newbie["latency_ms"]["current_rows"] == 50
    s = _summary(summary, "newbie")
    assert (s["columns_checked"], s["columns_drifted"], s["share_drifted"], s["dataset_drift"]) == (0, 0, None, False)


def test_all_null_on_one_side(con):
    metrics, summary = compute_drift(con, SHIFTED)
    sparse = _by_column(metrics, "sparse")
    assert sparse["confidence"]["reason"] == "current_all_null" and sparse["confidence"]["statistic"] is None
    assert sparse["features.beta_flag"]["reason"] == "reference_all_null"
    assert sparse["features.language"]["reason"] == "current_all_null"
    assert sparse["latency_ms"]["reason"] is None and sparse["latency_ms"]["statistic"] is not None
    assert "features.beta_flag" not in _by_column(metrics, "big")  # keys are per model
    s = _summary(summary, "sparse")
    assert s["columns_checked"] == 5 and s["columns_skipped"] == 6
    # the report sample declares only the columns Evidently can test (it raises on a column empty on one side)
    ref, cur = sample_for_report(con, SHIFTED, "sparse")
    assert "confidence" in cur.columns and "confidence" not in cur.attrs["numerical_columns"]
    assert "features.beta_flag" not in ref.attrs["categorical_columns"]
    assert "latency_ms" in ref.attrs["numerical_columns"]


def test_nan_and_infinity_are_dropped(tmp_path):
    rng = np.random.default_rng(3)
    frames = [_events(rng, day, "m", 300) for day in REF_DAYS]
    bad = _events(rng, SHIFTED, "m", 300)
    bad.loc[:9, "latency_ms"] = [np.inf, -np.inf] * 5
    frames.append(bad)
    c = duckdb.connect(str(tmp_path / "nan.duckdb"))
    _load(c, frames)
    c.execute("UPDATE raw.inference_events SET latency_ms = 'nan'::DOUBLE "
              "WHERE dt = ? AND latency_ms BETWEEN 0 AND 300", [SHIFTED])
    n_nan = c.execute("SELECT count(*) FROM raw.inference_events WHERE isnan(latency_ms)").fetchone()[0]
    metrics, _ = compute_drift(c, SHIFTED)
    lat = _by_column(metrics, "m")["latency_ms"]
    assert lat["current_values"] == 300 - 10 - n_nan and lat["statistic"] is not None
    ref, cur = sample_for_report(c, SHIFTED, "m", max_rows=10_000)
    assert cur["latency_ms"].notna().sum() == lat["current_values"]


def test_pinned_reference_window(con):
    cfg = DriftConfig(reference_start=D(2025, 6, 3), reference_end=D(2025, 6, 4))
    metrics, summary = compute_drift(con, SHIFTED, cfg)
    big = _by_column(metrics, "big")
    assert big["latency_ms"]["reference_rows"] == 3000
    assert (big["latency_ms"]["reference_start"], big["latency_ms"]["reference_end"]) == (D(2025, 6, 3),
                                                                                          D(2025, 6, 4))
    assert big["latency_ms"]["drifted"]
    assert DriftConfig(reference_days=3).reference_window(SHIFTED) == (D(2025, 6, 6), D(2025, 6, 8))


def test_rejects_unsafe_source_and_columns(con):
    with pytest.raises(ValueError):
        compute_drift(con, SHIFTED, source="raw.inference_events; DROP TABLE x")
    with pytest.raises(ValueError):
        DriftConfig(numeric_columns=("latency_ms", "1; DROP TABLE x"))


# ---------------------------------------------------------------------------------------------------------------
# the statistics themselves


def test_ks_asymptotic_path_matches_scipy(con):
    """With more current values than ks_exact_max_rows, D comes from SQL and p from scipy's asymptotic formula."""
    metrics, _ = compute_drift(con, SHIFTED, DriftConfig(ks_exact_max_rows=10))
    lat = _by_column(metrics, "small")["latency_ms"]
    ref, cur = sample_for_report(con, SHIFTED, "small", max_rows=10_000)
    expected = stats.ks_2samp(ref["latency_ms"].dropna(), cur["latency_ms"].dropna(), method="asymp")
    assert lat["test_statistic"] == pytest.approx(expected.statistic, abs=1e-12)
    assert lat["p_value"] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


def test_wasserstein_grid_is_within_resolution(tmp_path):
    """Heavy-tailed values: the gridded normed distance stays within the configured resolution of scipy's."""
    rng = np.random.default_rng(11)
    frames = [_events(rng, day, "m", 2000) for day in REF_DAYS[:7]]
    frames.append(_events(rng, STABLE, "m", 2000, latency_ms=rng.pareto(1.5, 2000) * 300))
    c = duckdb.connect(str(tmp_path / "w.duckdb"))
    _load(c, frames)
    for tolerance in (1e-3, 1e-2):
        metrics, _ = compute_drift(c, STABLE, DriftConfig(wasserstein_tolerance=tolerance))
        got = _by_column(metrics, "m")["latency_ms"]["statistic"]
        ref, cur = sample_for_report(c, STABLE, "m", max_rows=100_000)
        expected = stats.wasserstein_distance(ref["latency_ms"], cur["latency_ms"]) / np.std(ref["latency_ms"])
        assert got == pytest.approx(expected, abs=tolerance)


def test_categorical_tests_from_counts_match_scipy():
    ref = {"a": 50, "b": 30, "c": 20}
    cur = {"a": 10, "b": 10, "d": 5}  # c vanished, d is new
    js = stattests.jensenshannon_from_counts(ref, cur)
    keys = ["a", "b", "c", "d"]
    from scipy.spatial import distance
    assert js == pytest.approx(distance.jensenshannon([ref.get(k, 0) / 100 for k in keys],
                                                      [cur.get(k, 0) / 25 for k in keys]))
    chi2, p = stattests.chisquare_from_counts(ref, cur)
    assert chi2 == np.inf and p == 0.0
    assert stattests.z_from_counts({"x": 5}, {"x": 7}) == (0.0, 1.0)


# ---------------------------------------------------------------------------------------------------------------
# agreement with Evidently


EVIDENTLY_METHOD = {"Wasserstein distance (normed)": "wasserstein", "Jensen-Shannon distance": "jensenshannon",
                    "K-S p_value": "ks", "chi-square p_value": "chisquare", "Z-test p_value": "z"}


def _evidently_drift(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, tuple[str, float, float]]:
    """column -> (method, score, share of drifted columns) from Evidently's DataDriftPreset on these frames."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=reference.attrs["numerical_columns"],
                                categorical_columns=reference.attrs["categorical_columns"])
    snapshot = Report([DataDriftPreset()]).run(Dataset.from_pandas(current, data_definition=definition),
                                               Dataset.from_pandas(reference, data_definition=definition))
    out, share = {}, None
    for m in snapshot.dict()["metrics"]:
        cfg = m["config"]
        if cfg["type"].endswith("DriftedColumnsCount"):
            share = float(m["value"]["share"])
        elif cfg["type"].endswith("ValueDrift"):
            out[cfg["column"]] = (EVIDENTLY_METHOD[cfg["method"]], float(m["value"]))
    return {c: (meth, score, share) for c, (meth, score) in out.items()}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("day", [STABLE, SHIFTED])
def test_agrees_with_evidently(con, day):
    metrics, summary = compute_drift(con, day)
    seen_methods = set()
    for model in ("big", "small", "sparse"):
        ref, cur = sample_for_report(con, day, model, max_rows=100_000)  # every row: the same data as ours
        ours = _by_column(metrics, model)
        assert len(cur) == ours["latency_ms"]["current_rows"] and len(ref) == ours["latency_ms"]["reference_rows"]
        theirs = _evidently_drift(ref, cur)
        assert set(theirs) == {c for c, r in ours.items() if r["statistic"] is not None}
        for column, (method, score, share) in theirs.items():
            row = ours[column]
            assert row["method"] == method, column
            assert row["statistic"] == pytest.approx(score, abs=0.005), (model, column, method)
            threshold_side = {"wasserstein": score >= 0.1, "jensenshannon": score >= 0.1, "ks": score <= 0.05}
            assert row["drifted"] == threshold_side.get(method, score < 0.05), (model, column)
            seen_methods.add(method)
        assert _summary(summary, model)["share_drifted"] == pytest.approx(share)
    if day == SHIFTED:
        assert seen_methods == {"wasserstein", "jensenshannon", "ks", "chisquare", "z"}


def test_sample_for_report_shape(con):
    ref, cur = sample_for_report(con, SHIFTED, "big", max_rows=500)
    assert len(ref) == 500 and len(cur) == 500
    assert list(ref.columns) == ["latency_ms", "input_tokens", "output_tokens", "confidence", "status",
                                 "is_fallback", "features.cached", "features.docs", "features.language",
                                 "features.prompt_chars"]
    assert ref["latency_ms"].dtype == np.float64 and ref["features.docs"].dtype == np.float64
    assert set(cur["features.language"].dropna()) <= {"en", "de", "es", "fr"}
    assert set(ref["is_fallback"]) <= {"true", "false"}
    again, _ = sample_for_report(con, SHIFTED, "big", max_rows=500)
    pd.testing.assert_frame_equal(ref, again)  # deterministic
    # given the row counts (7 x 1500 reference, 1500 current), only ~4 x 500 rows a side are read: still full,
    # deterministic, and drawn from the same rows
    thin_ref, thin_cur = sample_for_report(con, SHIFTED, "big", max_rows=500, rows=(10_500, 1_500))
    assert len(thin_ref) == 500 and len(thin_cur) == 500
    pd.testing.assert_frame_equal(thin_ref, sample_for_report(con, SHIFTED, "big", max_rows=500,
                                                              rows=(10_500, 1_500))[0])
    assert not thin_ref.equals(ref)  # another sample of the reference: the prefilter did apply
    pd.testing.assert_frame_equal(thin_cur, cur)  # 4 x 500 > 1500: the current day is not thinned


def test_feature_shapes_are_read_once_per_day_and_follow_rewrites(tmp_path):
    """Each day's feature keys are parsed once and cached (meta.feature_shapes); a day whose rows change is read
    again, so a key that appears later is compared."""
    rng = np.random.default_rng(3)
    con = duckdb.connect(str(tmp_path / "shapes.duckdb"))
    _load(con, [_events(rng, day, "m", 200) for day in REF_DAYS])
    compute_drift(con, STABLE)
    cached = con.execute("SELECT count(DISTINCT dt) FROM meta.feature_shape_days").fetchone()[0]
    assert cached == len(REF_DAYS)  # the day and its 7 reference days
    # a cached day is not parsed again: emptied behind the cache's back, it stays empty
    con.execute("DELETE FROM meta.feature_shapes WHERE dt < ?", [STABLE])
    names = {r["column_name"] for r in compute_drift(con, STABLE)[0]}
    assert con.execute("SELECT count(*) FROM meta.feature_shapes WHERE dt < ?", [STABLE]).fetchone()[0] == 0
    assert "features.language" in names  # still known from the current day's shapes
    # the current day is rewritten with other feature keys (fewer rows with features): read again
    con.execute("DELETE FROM raw.inference_events WHERE dt = ?", [STABLE])
    new = _events(rng, STABLE, "m", 150)
    new["features"] = [json.dumps({"tier": "pro"})] * len(new)
    con.execute("INSERT INTO raw.inference_events SELECT dt, model, latency_ms, input_tokens, output_tokens, "
                "confidence, status, is_fallback, CAST(features AS JSON) FROM new")
    names = {r["column_name"] for r in compute_drift(con, STABLE)[0]}
    assert "features.tier" in names
