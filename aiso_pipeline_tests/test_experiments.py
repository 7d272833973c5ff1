"""Experiment readouts: registry, sufficient statistics in SQL (checked against pandas), decisions on generated
worlds (A/A, SRM, confidence threshold, CUPED), mixed-variant users, idempotency, report pages, the asset.

Each test writes its own small marts.joined_outcomes (numpy at a fixed seed) with exactly the columns the
readouts use, so it does not depend on ingestion or attribution.
"""
import datetime as dt
import math
import re
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import yaml

from aiso_pipeline import experiments, warehouse
from aiso_pipeline.config import data_dir
from aiso_pipeline.defs.experiments import MIXED_CHECK, SRM_CHECK, experiment_readouts
from aiso_pipeline.defs.resources import WarehouseResource
from aiso_pipeline.errors import AisoError
from aiso_pipeline.experiments import registry as reg
from aiso_pipeline.experiments.engine import drop_temp_tables

START = dt.date(2025, 6, 1)
AS_OF = "2025-06-07"
T0 = pd.Timestamp("2025-06-01", tz="UTC")

JOINED_DDL = """
CREATE SCHEMA IF NOT EXISTS marts;
CREATE TABLE IF NOT EXISTS marts.joined_outcomes (
    request_id VARCHAR NOT NULL, dt DATE NOT NULL, "timestamp" TIMESTAMPTZ NOT NULL, model VARCHAR NOT NULL,
    feature VARCHAR, user_id VARCHAR, experiment_id VARCHAR, variant VARCHAR, status VARCHAR, cost_usd DOUBLE,
    weight DOUBLE NOT NULL, has_outcome BOOLEAN NOT NULL, success BOOLEAN NOT NULL, converted BOOLEAN NOT NULL,
    revenue DOUBLE NOT NULL, window_closed BOOLEAN NOT NULL, latency_ms DOUBLE, is_fallback BOOLEAN
);
"""
COLUMNS = ["request_id", "dt", "timestamp", "model", "feature", "user_id", "experiment_id", "variant", "status",
           "cost_usd", "weight", "has_outcome", "success", "converted", "revenue", "window_closed", "latency_ms",
           "is_fallback"]


# --------------------------------------------------------------------------------------------------
# A small world generator
# --------------------------------------------------------------------------------------------------


def simulate(experiment_id: str, users: int, seed: int, *, split=None, conversion=None, cost=None, latency=None,
             error=None, success=None, revenue=20.0, feature="chat", days=7, activity=0.0, pre_share=0.0,
             weight=1.0, tag=True, user_latency=0.0) -> pd.DataFrame:
    """Inference rows of one experiment: users split by `split` (variant -> share), each with 1 + Poisson(3 e^(a z))
    requests over `days` days from START. Per variant: user conversion probability, mean cost per request, mean
    latency, error and success probability. `activity` a > 0 ties request counts (so cost) and revenue to a user
    propensity z, and `pre_share` of the users get the same behaviour over the 14 days before START, untagged, on
    the same feature: the pre-period CUPED can use. `user_latency` s > 0 gives each user a lasting latency factor
    e^(s w), the same before and after exposure (a ratio metric CUPED can adjust)."""
    split = split or {"control": 0.5, "treatment": 0.5}
    names = list(split)
    par = lambda d, default: {v: (d or {}).get(v, default) for v in names}  # noqa: E731
    conversion, cost, latency = par(conversion, 0.2), par(cost, 0.01), par(latency, 800.0)
    error, success = par(error, 0.02), par(success, 0.6)
    rng = np.random.default_rng(seed)
    z = rng.normal(size=users)
    w = rng.normal(size=users) * user_latency
    v_idx = rng.choice(len(names), users, p=np.array(list(split.values())) / sum(split.values()))
    frames = []
    for period in ("post", "pre"):
        has = np.ones(users, bool) if period == "post" else rng.random(users) < pre_share
        u = np.flatnonzero(has)
        if len(u) == 0:
            continue
        k = 1 + rng.poisson(3 * np.exp(activity * z[u]))
        user = np.repeat(u, k)
        n = len(user)
        span = days if period == "post" else 14
        offset = rng.uniform(0, span * 86400, n)
        ts = (T0 + pd.to_timedelta(offset, unit="s")) if period == "post" else \
             (T0 - pd.to_timedelta(offset + 1, unit="s"))
        var = np.array(names)[v_idx[user]]
        vmap = lambda d: np.array([d[v] for v in var]) if period == "post" else np.full(n, d[names[0]])  # noqa: E731
        status = np.where(rng.random(n) < vmap(error), "error", "ok")
        c = rng.lognormal(np.log(vmap(cost)) - 0.125, 0.5)
        lat = rng.lognormal(np.log(vmap(latency)) - 0.045, 0.3) * np.exp(w[user])
        succ = rng.random(n) < vmap(success)
        # One converted request per converting user, on a random request of theirs; revenue follows z.
        conv_p = np.array([conversion[names[v_idx[x]]] if period == "post" else conversion[names[0]] for x in u])
        converts = rng.random(len(u)) < conv_p
        first_row = np.concatenate([[0], np.cumsum(k)[:-1]])
        pick = first_row + (rng.random(len(u)) * k).astype(int)
        converted = np.zeros(n, bool)
        converted[pick[converts]] = True
        rev = np.where(converted, rng.gamma(2.0, revenue / 2, n) * np.exp(activity * z[user]), 0.0)
        frames.append(pd.DataFrame({
            "request_id": [f"{experiment_id}-{period}-{i}" for i in range(n)],
            "dt": ts.date, "timestamp": ts, "model": "gpt-4o", "feature": feature,
            "user_id": [f"{experiment_id}-u{x}" for x in user],
            "experiment_id": experiment_id if (tag and period == "post") else None,
            "variant": var if (tag and period == "post") else None,
            "status": status, "cost_usd": np.round(c, 6), "weight": weight, "has_outcome": converted | succ,
            "success": succ, "converted": converted, "revenue": np.round(rev, 2), "window_closed": True,
            "latency_ms": np.round(lat, 1), "is_fallback": False,
        }))
    return pd.concat(frames, ignore_index=True)[COLUMNS]


def load_rows(data, df: pd.DataFrame) -> None:
    with warehouse.connect(data) as con:
        con.execute(JOINED_DDL)
        con.register("_df", df)
        con.execute("INSERT INTO marts.joined_outcomes BY NAME SELECT * FROM _df")
        con.unregister("_df")


def write_registry(data, text: str) -> dict:
    data.reference.mkdir(parents=True, exist_ok=True)
    data.experiments.write_text(text)
    return reg.load(data.experiments)


def run(data, as_of: str = AS_OF, registry=None, reports=True):
    with warehouse.connect(data) as con:
        return experiments.build_experiment_readouts(con, as_of, registry or {},
                                                     data.reports if reports else None)


def rows(data, experiment_id: str, as_of: str = AS_OF) -> pd.DataFrame:
    with warehouse.connect(data) as con:
        return con.execute("SELECT * FROM marts.experiment_readouts WHERE experiment_id = ? AND dt = ? "
                           "ORDER BY metric, variant", [experiment_id, as_of]).df()


@pytest.fixture
def data(tmp_path):
    d = data_dir(tmp_path / "data")
    d.reference.mkdir(parents=True)
    return d


# --------------------------------------------------------------------------------------------------
# Generated worlds
# --------------------------------------------------------------------------------------------------


def test_aa_experiment_is_not_shipped(data):
    load_rows(data, simulate("aa_test", 3000, seed=11, split={"a": 0.5, "b": 0.5}))
    e = run(data).get("aa_test")
    assert e.control == "a"  # no registry, no variant named control: the first by name
    assert e.decision not in ("ship", "invalid")
    df = rows(data, "aa_test")
    assert len(set(df.decision)) == 1
    primary = df[df.metric_role == "primary"].iloc[0]
    assert primary.metric == "conversion_rate" and primary.p_value_adjusted > 0.05
    assert primary.ci_low < 0 < primary.ci_high
    assert not df.srm_flag.any()


def test_aa_worlds_rarely_ship_or_stop(data):
    # 40 A/A experiments in one run. Shipping needs the primary significantly better after Holm (about 1-2% of
    # A/A tests); stopping needs one of 3 uncorrected one-sided guardrails at 5%, about 14% (the contract's
    # choice: guardrails err on the side of stopping).
    load_rows(data, pd.concat([simulate(f"aa{i}", 800, seed=100 + i, split={"a": 0.5, "b": 0.5})
                               for i in range(40)], ignore_index=True))
    decisions = list(run(data, reports=False).decisions.values())
    assert len(decisions) == 40
    assert decisions.count("ship") <= 3 and decisions.count("invalid") <= 1
    assert decisions.count("stop") <= 12
    assert decisions.count("keep_running") >= 25


def test_srm_experiment_is_invalid(data):
    load_rows(data, simulate("srm_test", 3000, seed=12, split={"control": 0.6, "treatment": 0.4},
                             conversion={"treatment": 0.3}))
    registry = write_registry(data, "experiments:\n  - id: srm_test\n    weights: {control: 0.5, treatment: 0.5}\n")
    s = run(data, registry=registry)
    e = s.get("srm_test")
    assert e.decision == "invalid" and e.srm_flag and e.srm_p_value < 1e-6
    df = rows(data, "srm_test")
    assert set(df.decision) == {"invalid"} and df.srm_flag.all()
    with warehouse.connect(data) as con:
        passed, severity = con.execute(
            "SELECT passed, severity FROM quality.check_results WHERE dt = ? AND check_name = ?",
            [AS_OF, f"{experiments.SRM_CHECK}:srm_test"]).fetchone()
    assert (passed, severity) == (False, "ERROR")
    page = (data.reports / "experiments" / "srm_test.md").read_text()
    assert "INVALID" in page and "sample ratio mismatch" in page


def test_confidence_threshold_experiment_ships_with_lower_cost_per_converted_user(data):
    # The treatment answers low-confidence chats with a cheap, fast fallback: conversion 12% -> 18%, cost -40%.
    # 10,000 users over the 7 days: enough for the sequential test (the default) to decide after its burn-in.
    world = simulate("confidence_threshold", 10000, seed=13, split={"control": 0.5, "fallback_low_conf": 0.5},
                     conversion={"control": 0.12, "fallback_low_conf": 0.18},
                     cost={"control": 0.012, "fallback_low_conf": 0.007},
                     latency={"control": 1200.0, "fallback_low_conf": 700.0})
    load_rows(data, world)
    registry = write_registry(data, """experiments:
  - id: confidence_threshold
    description: Serve a cheap fallback answer when model confidence is below 0.5
    control: control
    weights: {control: 0.5, fallback_low_conf: 0.5}
    primary_metric: conversion_rate
    guardrails: [latency_ms, cost_per_user, error_rate]
    mde: 0.05
    start: 2025-06-01
    feature: chat
""")
    s = run(data, registry=registry)
    e = s.get("confidence_threshold")
    assert e.decision == "ship"
    cpc = e.cost_per_converted_user()
    assert cpc["fallback_low_conf"] < 0.75 * cpc["control"]
    df = rows(data, "confidence_threshold").set_index("metric")
    assert df.loc["conversion_rate", "significant"] and df.loc["conversion_rate", "rel_lift"] > 0.2
    assert df.loc["cost_per_user", "rel_lift"] < 0 and not df.loc["cost_per_user", "significant"]  # not harmed
    assert df.loc["cost_per_user", "is_guardrail"] and not df.loc["revenue_per_user", "is_guardrail"]
    # the headline, cost per converted user, is a readout of its own: a ratio metric with a delta-method interval
    cpc_row = df.loc["cost_per_converted_user"]
    expected = cpc["fallback_low_conf"] / cpc["control"] - 1
    assert cpc_row["metric_role"] == "secondary" and cpc_row["rel_lift"] == pytest.approx(expected, rel=1e-9)
    assert cpc_row["ci_low"] < cpc_row["rel_lift"] < cpc_row["ci_high"] < 0 and cpc_row["significant"]
    assert df.loc["cost_per_success", "rel_lift"] < 0
    assert (df.target_mde == 0.05).all() and df.mde.notna().all()
    page = (data.reports / "experiments" / "confidence_threshold.md").read_text()
    assert "SHIP" in page and "Cost per converted user: fallback_low_conf" in page
    assert re.search(r"Cost per converted user: fallback_low_conf \$[0-9.]+ vs control \$[0-9.]+ \(-[0-9.]+%, "
                     r"\[-[0-9.]+%, -[0-9.]+%\], p ", page)
    assert "┤" in page and "conversion_rate · fallback_low_conf" in page  # the forest plot


def test_guardrail_harm_stops_the_experiment(data):
    load_rows(data, simulate("slow", 3000, seed=14, latency={"control": 800.0, "treatment": 1000.0}))
    e = run(data).get("slow")
    assert e.decision == "stop"
    lat = next(r for r in e.rows if r["metric"] == "latency_ms")
    assert lat["is_guardrail"] and lat["significant"] and lat["rel_lift"] > 0.15


def test_cuped_narrows_the_ci_when_the_pre_period_predicts_the_metric(data):
    load_rows(data, simulate("cuped", 3000, seed=15, activity=1.2, pre_share=0.8))
    on = write_registry(data, "experiments:\n  - id: cuped\n")
    run(data, registry=on)
    with_cuped = rows(data, "cuped").set_index("metric")
    off = write_registry(data, "experiments:\n  - id: cuped\n    cuped: false\n")
    run(data, registry=off)
    without = rows(data, "cuped").set_index("metric")
    width = lambda df, m: df.loc[m, "abs_ci_high"] - df.loc[m, "abs_ci_low"]  # noqa: E731
    # Cost per user follows the user's activity, which the 14 days before exposure show: a much narrower CI.
    assert with_cuped.loc["cost_per_user", "cuped_theta"] > 0 and without.loc["cost_per_user", "cuped_theta"] == 0
    assert width(with_cuped, "cost_per_user") < 0.8 * width(without, "cost_per_user")
    assert with_cuped.loc["cost_per_user", "ci_high"] - with_cuped.loc["cost_per_user", "ci_low"] < \
        0.8 * (without.loc["cost_per_user", "ci_high"] - without.loc["cost_per_user", "ci_low"])  # relative CI too
    # Revenue (one order at most per user) is barely predicted: CUPED must not make it worse.
    assert width(with_cuped, "revenue_per_user") <= 1.001 * width(without, "revenue_per_user")
    for metric in ("revenue_per_user", "cost_per_user"):
        # Same data, same unadjusted means: CUPED changes the variance, not what is reported as the mean.
        assert with_cuped.loc[metric, "mean"] == pytest.approx(without.loc[metric, "mean"])
    # Ratio metrics are adjusted by their own pre-period ratio (gbstats' regression-adjusted ratio): never wider.
    for metric in ("latency_ms", "success_rate", "error_rate", "cost_per_success"):
        assert with_cuped.loc[metric, "cuped_theta"] != 0 and without.loc[metric, "cuped_theta"] == 0
        assert width(with_cuped, metric) <= 1.01 * width(without, metric), metric


def test_cuped_narrows_a_ratio_metric_whose_pre_period_ratio_predicts_it(data):
    """Each user keeps a latency level before and after exposure: latency per request, a ratio metric, gets a
    theta near 1 and a much narrower interval with CUPED, and the same unadjusted mean."""
    load_rows(data, simulate("lat", 3000, seed=21, pre_share=0.9, user_latency=0.8))
    run(data, registry=write_registry(data, "experiments:\n  - id: lat\n"))
    on = rows(data, "lat").set_index("metric").loc["latency_ms"]
    run(data, registry=write_registry(data, "experiments:\n  - id: lat\n    cuped: false\n"))
    off = rows(data, "lat").set_index("metric").loc["latency_ms"]
    assert 0.5 < on["cuped_theta"] < 1.2 and on["mean"] == pytest.approx(off["mean"])
    # ~4 requests per user with per-request noise: measured 0.69 of the unadjusted width on this world.
    assert on["ci_high"] - on["ci_low"] < 0.75 * (off["ci_high"] - off["ci_low"])


def test_days_to_target_mde_is_what_the_same_inflow_delivers(data, tmp_path):
    """After a week at 200 users a day the readout says how many more days reach the target MDE; an experiment
    that ran that much longer at the same inflow reports the target (within 2%), two days fewer does not."""
    target = 0.15
    registry = f"experiments:\n  - id: pace\n    mde: {target}\n"
    load_rows(data, simulate("pace", 1400, seed=22))
    run(data, registry=write_registry(data, registry))
    now = rows(data, "pace").set_index("metric").loc["conversion_rate"]
    more = now["days_to_target_mde"]
    assert now["mde"] > target and 5 <= more < 200 and now["target_mde"] == target
    assert rows(data, "pace").days_to_target_mde.notna().all()

    def mde_after(days: int) -> float:
        later = data_dir(tmp_path / f"later{days}")
        load_rows(later, simulate("pace", 200 * days, seed=23, days=days))
        as_of = str(START + dt.timedelta(days=days - 1))
        run(later, as_of=as_of, registry=write_registry(later, registry), reports=False)
        return rows(later, "pace", as_of).set_index("metric").loc["conversion_rate", "mde"]

    assert mde_after(7 + int(more)) <= target * 1.02 and mde_after(7 + int(more) - 2) > target
    text = (data.reports / "experiments" / "pace.md").read_text()
    assert f"about {more:.0f} more days at the current inflow" in text


def test_no_pre_period_means_no_adjustment(data):
    load_rows(data, simulate("fresh", 1000, seed=16))
    e = run(data).get("fresh")
    assert all(r["cuped_theta"] == 0 for r in e.rows)
    assert all(int(s["users_with_pre"]) == 0 for s in e.sums.values())


def test_users_in_two_variants_are_excluded_and_counted(data):
    world = simulate("leaky", 1000, seed=17)
    leak_users = world.user_id.drop_duplicates().iloc[:7]
    extra = world[world.user_id.isin(leak_users)].groupby("user_id").head(1).copy()
    extra["variant"] = np.where(extra.variant == "control", "treatment", "control")
    extra["request_id"] = extra.request_id + "-leak"
    extra["timestamp"] = extra["timestamp"] + pd.Timedelta(minutes=5)
    load_rows(data, pd.concat([world, extra], ignore_index=True))
    e = run(data).get("leaky")
    assert e.mixed_variant_users == 7
    assert sum(e.units.values()) == world.user_id.nunique() - 7
    df = rows(data, "leaky")
    assert (df.mixed_variant_users == 7).all()
    assert (df.units + df.control_units == world.user_id.nunique() - 7).all()
    with warehouse.connect(data) as con:
        got = con.execute("SELECT passed, severity, observed_value, details FROM quality.check_results "
                          "WHERE dt = ? AND check_name = ?", [AS_OF, f"{experiments.MIXED_CHECK}:leaky"]).fetchone()
    assert got[:3] == (False, "WARN", 7.0) and "excluded" in got[3]


# --------------------------------------------------------------------------------------------------
# Sufficient statistics: SQL vs pandas on the same rows
# --------------------------------------------------------------------------------------------------


def pandas_sums(df: pd.DataFrame, experiment_id: str, start: dt.date, as_of: dt.date) -> pd.DataFrame:
    tagged = df[(df.experiment_id == experiment_id) & df.variant.notna() & df.user_id.notna()
                & (df.dt >= start) & (df.dt <= as_of)]
    g = tagged.groupby("user_id").agg(variants=("variant", "nunique"), variant=("variant", "min"),
                                      exposed_at=("timestamp", "min"))
    units = g[g.variants == 1].reset_index()
    features = set(tagged.feature)
    x = df[df.feature.isin(features) & (df.dt <= as_of)].merge(units[["user_id", "exposed_at"]], on="user_id")
    x = x[x.timestamp >= x.exposed_at - pd.Timedelta(days=14)]
    x["post"] = x.timestamp >= x.exposed_at
    x["w_cost"] = x.weight * x.cost_usd.fillna(0)
    x["is_error"] = x.status.isin(["error", "timeout"]).astype(float) * x.weight
    x["w_succ"] = x.success.astype(float) * x.weight
    x["w_lat"] = (x.weight * x.latency_ms).where(x.latency_ms.notna(), 0.0)
    x["w_lat_d"] = x.weight.where(x.latency_ms.notna(), 0.0)
    x["requests"] = x.weight
    post, pre = x[x.post], x[~x.post]
    # Written out by hand (not from metrics.yaml), so the declaration is tested, not repeated.
    columns = {"converted": ("converted", "max"), "revenue": ("revenue", "sum"), "cost": ("w_cost", "sum"),
               "requests": ("requests", "sum"), "successes": ("w_succ", "sum"), "errors": ("is_error", "sum"),
               "latency": ("w_lat", "sum"), "timed_requests": ("w_lat_d", "sum")}
    per = {}
    for name, (col, how) in columns.items():
        per[name] = post.groupby("user_id")[col].agg(how).astype(float)
        per[f"{name}_pre"] = pre.groupby("user_id")[col].agg(how).astype(float)
    u = units[["user_id", "variant"]].merge(pd.DataFrame(per), left_on="user_id", right_index=True,
                                            how="left").fillna(0.0)
    out = {}
    for v, grp in u.groupby("variant"):
        r = {"n": len(grp), "converted_users": grp.converted.sum(), "cost_usd": grp.cost.sum()}
        for a in per:
            r[f"{a}_sum"], r[f"{a}_ss"] = grp[a].sum(), (grp[a] ** 2).sum()
            for b in per:
                r[f"{a}__{b}"] = (grp[a] * grp[b]).sum()
        out[v] = r
    return pd.DataFrame(out).T, int((g.variants > 1).sum())


def test_sufficient_statistics_equal_pandas(data):
    world = simulate("suff", 600, seed=18, activity=0.5, pre_share=0.7, weight=1.0)
    rng = np.random.default_rng(5)
    # Sampled rows (weight 4), unpriced rows, missing latency, timeouts, an untagged row after exposure and a
    # second feature the experiment does not run on: all must be handled the same way on both sides.
    world.loc[rng.random(len(world)) < 0.3, "weight"] = 4.0
    world.loc[rng.random(len(world)) < 0.1, "cost_usd"] = np.nan
    world.loc[rng.random(len(world)) < 0.1, "latency_ms"] = np.nan
    world.loc[rng.random(len(world)) < 0.05, "status"] = "timeout"
    other = world.sample(200, random_state=1).copy()
    other["feature"], other["experiment_id"], other["variant"] = "search", None, None
    other["request_id"] = other.request_id + "-search"
    leak = world[world.experiment_id.notna()].groupby("user_id").head(1).iloc[:3].copy()
    leak["variant"] = np.where(leak.variant == "control", "treatment", "control")
    leak["request_id"] = leak.request_id + "-leak"
    df = pd.concat([world, other, leak], ignore_index=True)
    load_rows(data, df)
    as_of = dt.date(2025, 6, 5)  # mid-experiment: later rows must be left out
    with warehouse.connect(data) as con:
        experiments.ensure_tables(con)
        try:
            _, _, exclusions, sums = experiments.sufficient_statistics(con, as_of, {})
        finally:
            drop_temp_tables(con)
    sql = pd.DataFrame(sums).set_index("variant")
    expected, mixed = pandas_sums(df, "suff", START, as_of)
    assert exclusions["suff"]["mixed_variant_users"] == mixed > 0
    bookkeeping = {"experiment_id", "users_with_pre", "post_rows", "unpriced_rows", "open_rows"}
    compared = set(sql.columns) - bookkeeping
    assert {"converted_sum", "revenue_pre_ss", "requests__successes", "cost__cost_pre"} <= compared
    for col in compared:
        for v in expected.index:
            assert float(sql.loc[v, col]) == pytest.approx(float(expected.loc[v, col]), rel=1e-9, abs=1e-9), (v, col)
    assert (sql.users_with_pre > 0).all()


def test_stats_objects_from_sums_match_analyze_inputs(data):
    load_rows(data, simulate("kinds", 400, seed=19))
    e = run(data, reports=False).get("kinds")
    assert isinstance(e.stats["conversion_rate"]["control"], experiments.engine.stats.Cuped)
    assert isinstance(e.stats["latency_ms"]["control"], experiments.engine.stats.CupedRatio)
    c = e.stats["conversion_rate"]["control"]
    assert c.mean == pytest.approx(e.sums["control"]["converted_users"] / e.sums["control"]["n"])
    noc = write_registry(data, "experiments:\n  - id: kinds\n    cuped: false\n")
    e = run(data, registry=noc, reports=False).get("kinds")
    assert isinstance(e.stats["revenue_per_user"]["control"], experiments.engine.stats.SampleMean)
    assert type(e.stats["latency_ms"]["control"]) is experiments.engine.stats.Ratio


# --------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------


def test_registry_defaults_without_a_file(data):
    load_rows(data, simulate("plain", 800, seed=20, split={"control": 0.5, "x": 0.25, "y": 0.25}))
    assert reg.load(data.experiments) == {}
    e = run(data).get("plain")
    cfg = e.config
    assert not cfg.registered and cfg.primary == "conversion_rate" and cfg.alpha == 0.05
    assert dict(cfg.guardrails) == {"latency_ms": "increase", "cost_per_user": "increase", "error_rate": "increase"}
    assert e.control == "control" and e.start == START  # first exposure
    df = rows(data, "plain")
    assert set(df.variant) == {"x", "y"} and set(df.control_variant) == {"control"}
    assert set(df.metric) == set(reg.METRICS)
    assert set(df[df.is_guardrail].metric) == {"latency_ms", "cost_per_user", "error_rate"}
    assert set(df[df.metric_role == "secondary"].metric) == {"revenue_per_user", "success_rate",
                                                             "cost_per_converted_user", "cost_per_success"}


def test_readme_table_of_metrics_is_generated_from_the_declaration():
    from aiso_pipeline.experiments import docs
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert docs.section() in readme, "run: .venv/bin/python -m aiso_pipeline.experiments.docs README.md"


def test_a_declared_metric_brings_its_sums_and_statistic():
    """A new measure and ratio metric in the declaration: the per-user and per-variant SQL carry them, the
    statistic is built from those sums, and the defaults pick it up by role."""
    from aiso_pipeline.experiments import metrics
    doc = yaml.safe_load((Path(metrics.__file__).parent / "metrics.yaml").read_text())
    doc["measures"]["fallbacks"] = {"sql": "weight * is_fallback::INT"}
    doc["metrics"]["fallback_rate"] = {"kind": "ratio", "numerator": "fallbacks", "denominator": "requests",
                                       "better": "lower", "role": "guardrail", "unit": "rate",
                                       "description": "fallbacks / requests"}
    c = metrics.parse(doc)
    assert "weight * is_fallback::INT" in c.user_metrics_sql()
    sql = c.variant_stats_sql()
    assert "AS fallbacks_sum" in sql and "AS fallbacks_ss" in sql and "AS fallbacks__requests" in sql
    assert "fallback_rate" in c.guardrails and "fallback_rate" in c.lower_is_better
    row = {"n": 3, "fallbacks_sum": 1.0, "fallbacks_ss": 1.0, "requests_sum": 6.0, "requests_ss": 14.0,
           "fallbacks__requests": 3.0}
    st = c.statistic("fallback_rate", row, cuped=False)
    assert (st.n, st.m_sum, st.d_sum, st.m_d_sum_of_products) == (3, 1.0, 6.0, 3.0) and st.mean == pytest.approx(1 / 6)


BAD_DECLARATIONS = [
    (lambda d: d["metrics"]["latency_ms"].update(cap=True), "metric latency_ms: only mean metrics can be capped"),
    (lambda d: d["metrics"]["error_rate"].update(numerator="oops"), "metric error_rate: numerator must be a declared"),
    (lambda d: d["metrics"]["success_rate"].update(role="primary"), "metrics: exactly one role: primary"),
    (lambda d: d["metrics"]["revenue_per_user"].update(colour="red"), "unknown keys ['colour']"),
    (lambda d: d["measures"]["cost"].update(agg="median"), "measure cost: agg must be one of"),
]


@pytest.mark.parametrize("change, message", BAD_DECLARATIONS)
def test_declaration_errors_name_the_metric_and_the_rule(change, message):
    from aiso_pipeline.experiments import metrics
    doc = yaml.safe_load((Path(metrics.__file__).parent / "metrics.yaml").read_text())
    change(doc)
    with pytest.raises(metrics.DeclarationError, match=re.escape(message)):
        metrics.parse(doc)


def test_registry_defaults_expect_equal_weights(data):
    # Without registry weights the expected split is equal: a 50/25/25 split is a mismatch.
    load_rows(data, simulate("uneven", 2000, seed=21, split={"control": 0.5, "x": 0.25, "y": 0.25}))
    assert run(data).get("uneven").decision == "invalid"
    fixed = write_registry(data, "experiments:\n  - id: uneven\n    weights: {control: 2, x: 1, y: 1}\n")
    assert run(data, registry=fixed).get("uneven").decision != "invalid"


def test_registry_window_and_options(data):
    world = simulate("opts", 2000, seed=22, revenue=50.0)
    load_rows(data, world)
    registry = write_registry(data, """experiments:
  - id: opts
    control: treatment
    primary_metric: revenue_per_user
    secondary_metrics: [success_rate]
    guardrails: {error_rate: increase, conversion_rate: decrease}
    start: 2025-06-02
    end: 2025-06-05
    alpha: 0.1
    correction: bh
    sequential: true
    winsorize: {revenue_per_user: 0.9}
    cap: {cost_per_user: 0.02}
  - id: not_yet
    start: 2025-07-01
  - id: never_seen
""")
    s = run(data, as_of="2025-06-07", registry=registry)
    assert s.skipped == {"not_yet": "starts on 2025-07-01", "never_seen": "no exposures yet"}
    e = s.get("opts")
    assert e.control == "treatment" and e.start == dt.date(2025, 6, 2) and e.window_end == dt.date(2025, 6, 5)
    df = rows(data, "opts", "2025-06-07").set_index("metric")
    assert list(df.index) == sorted(["revenue_per_user", "success_rate", "error_rate", "conversion_rate"])
    assert df.loc["conversion_rate", "is_guardrail"] and df.loc["revenue_per_user", "metric_role"] == "primary"
    assert (df.alpha == 0.1).all() and (df.correction == "bh").all() and df.sequential.all()
    # Users exposed before the start or after the end are not units.
    tagged = world[(world.dt >= dt.date(2025, 6, 2)) & (world.dt <= dt.date(2025, 6, 5))]
    assert sum(e.units.values()) == tagged.user_id.nunique()
    # Winsorized at the pooled 90% quantile: no user above the cap, so the means drop.
    uncapped = run(data, as_of="2025-06-07", registry={"opts": reg.ExperimentConfig(
        id="opts", control="treatment", primary="revenue_per_user", start=dt.date(2025, 6, 2),
        end=dt.date(2025, 6, 5))}, reports=False).get("opts")
    capped_mean = next(r for r in e.rows if r["metric"] == "revenue_per_user")["mean"]
    raw_mean = next(r for r in uncapped.rows if r["metric"] == "revenue_per_user")["mean"]
    assert capped_mean < raw_mean
    cost = e.stats["conversion_rate"]  # noqa: F841 (guardrail present)
    assert e.sums["control"]["cost_sum"] <= 0.02 * e.sums["control"]["n"] + 1e-9


@pytest.mark.parametrize("text, message", [
    ("experiments:\n  - id: a\n    gaurdrails: [latency_ms]\n", "unknown key 'gaurdrails'"),
    ("experiments:\n  - id: a\n    primary_metric: clicks\n", "unknown metric 'clicks'"),
    ("experiments:\n  - id: a\n    weights: {x: 1, y: -1}\n", "weights.y"),
    ("experiments:\n  - id: a\n    weights: {control: 0.6, treatment: 0.6}\n", "add up to 1.2, not 1"),
    ("experiments:\n  - id: a\n    margins: {latency_ms: 1.5}\n", "margins.latency_ms: must be a number in"),
    ("experiments:\n  - id: a\n    margins: {conversion_rate: 0.1}\n", "conversion_rate is not a guardrail"),
    ("experiments:\n  - id: a\n    control: z\n    weights: {x: 1, y: 1}\n", "control 'z' is not among"),
    ("experiments:\n  - id: a\n  - id: a\n", "listed twice"),
    ("experiments:\n  - id: a\n    start: 2025-06-05\n    end: 2025-06-01\n", "before start"),
    ("experiments:\n  - id: a\n    correction: bonferroni\n", "holm or bh"),
    ("experiments:\n  - id: a\n    cap: {latency_ms: 100}\n", "ratio metric"),
    ("experiments:\n  - control: a\n", "needs an `id`"),
    ("experiments: {id: a}\n", "list of experiments"),
    ("experiments: [\n", "not valid YAML"),
])
def test_registry_errors_name_the_problem(data, text, message):
    data.experiments.write_text(text)
    with pytest.raises(AisoError, match=message):
        reg.load(data.experiments)


def test_an_experiment_with_one_arm_says_why(data):
    """One arm seen: with registry weights naming two arms that is a sample ratio mismatch (invalid, with the
    split in the reason); without, there is nothing to compare, and the UI summary and the index page say so."""
    load_rows(data, simulate("lonely", 300, seed=24, split={"control": 1.0}))
    registry = write_registry(data, "experiments:\n  - id: lonely\n    weights: {control: 0.5, treatment: 0.5}\n")
    e = run(data, registry=registry).get("lonely")
    df = rows(data, "lonely")
    assert e.decision == "invalid" and (df.decision == "invalid").all() and (df.variant == "treatment").all()
    assert df.decision_reason.str.startswith("sample ratio mismatch").all()
    assert "control 300, treatment 0" in experiments.report.decision_reason(e)
    summary = run(data, registry=write_registry(data, "experiments:\n  - id: lonely\n"))
    assert summary.skipped == {"lonely": "only one variant seen (control)"} and rows(data, "lonely").empty
    assert "- lonely: only one variant seen (control)" in experiments.summary_markdown(summary)
    assert "only one variant seen" in (data.reports / "experiments" / "_index.md").read_text()


def test_generator_style_registry_parses(data):
    cfgs = write_registry(data, """experiments:
- id: confidence_threshold
  description: Serve a cheap fallback answer when model confidence is below 0.5
  feature: chat
  control: control
  weights:
    control: 0.5
    fallback_low_conf: 0.5
  primary_metric: conversion_rate
  guardrails:
  - latency_ms
  - cost_per_user
  - error_rate
  mde: 0.05
  start: 2025-06-01
- id: aa_test
  feature: search
  control: a
  weights: {a: 0.5, b: 0.5}
  start: 2025-06-01
  end: 2025-06-14
""")
    c = cfgs["confidence_threshold"]
    assert c.features == ("chat",) and c.start == START and c.target_mde == 0.05 and c.control == "control"
    assert cfgs["aa_test"].end == dt.date(2025, 6, 14)


# --------------------------------------------------------------------------------------------------
# Table behaviour: idempotent per day, cumulative, report pages
# --------------------------------------------------------------------------------------------------


def test_idempotent_per_day_and_cumulative(data):
    load_rows(data, simulate("cum", 1500, seed=23))
    first = run(data, as_of="2025-06-03")
    run(data, as_of="2025-06-07")
    again = run(data, as_of="2025-06-03")
    with warehouse.connect(data) as con:
        counts = dict(con.execute("SELECT dt::VARCHAR, count(*) FROM marts.experiment_readouts GROUP BY 1").fetchall())
        checks = con.execute("SELECT count(*) FROM quality.check_results WHERE dt = '2025-06-03'").fetchone()[0]
    assert counts == {"2025-06-03": len(reg.METRICS), "2025-06-07": len(reg.METRICS)}  # one row per metric
    assert checks == 2  # mixed-variant users + SRM, not duplicated by the rerun
    assert first.get("cum").units == again.get("cum").units
    early, late = rows(data, "cum", "2025-06-03"), rows(data, "cum", "2025-06-07")
    assert (late.units.values > early.units.values).all()  # cumulative since the start
    assert set(late.window_end) == {pd.Timestamp("2025-06-07")}


def test_report_pages_and_trajectory(data):
    load_rows(data, simulate("pages/with slash", 800, seed=24))
    for day in ("2025-06-05", "2025-06-06", "2025-06-07"):
        s = run(data, as_of=day)
    page = data.reports / "experiments" / f"{reg.safe_name('pages/with slash')}.md"  # pages_with_slash-<hash>.md
    assert page.name.startswith("pages_with_slash-")
    assert page in s.report_paths and (data.reports / "experiments" / "_index.md").exists()
    text = page.read_text()
    assert "As of 2025-06-07" in text and "Primary metric by as-of day" in text
    assert text.count("| 2025-06-0") == 3  # one trajectory row per as-of day


def test_forest_plot_marks_zero_ci_and_significance():
    rows_ = [dict(metric="m", variant="v", rel_lift=0.2, ci_low=0.1, ci_high=0.3, significant=True,
                  is_guardrail=False, metric_role="primary", ci_level=0.95),
             dict(metric="g", variant="v", rel_lift=-0.05, ci_low=-0.2, ci_high=0.1, significant=False,
                  is_guardrail=True, metric_role="guardrail", ci_level=0.9),
             dict(metric="n", variant="v", rel_lift=math.nan, ci_low=math.nan, ci_high=math.nan, significant=False,
                  is_guardrail=False, metric_role="secondary", ci_level=0.95)]
    plot = experiments.forest_plot(rows_)
    lines = plot.splitlines()
    m_line = next(line for line in lines if line.startswith("m · v"))
    g_line = next(line for line in lines if line.startswith("g · v"))
    assert "◆" in m_line and m_line.index("├") > m_line.index("│")  # CI entirely right of 0
    assert "●" in g_line and g_line.index("├") < g_line.index("┼") < g_line.index("┤")  # crosses 0
    assert "+20.0%" in m_line and "[+10.0%, +30.0%]" in m_line


def test_no_experiments_writes_nothing(data):
    load_rows(data, simulate("untagged", 50, seed=25, tag=False))
    s = run(data)
    assert s.experiments == [] and s.rows_written == 0
    assert "no experiment readouts" in experiments.summary_markdown(s)


# --------------------------------------------------------------------------------------------------
# The Dagster asset
# --------------------------------------------------------------------------------------------------


def test_asset_materializes_readouts_checks_and_pages(data):
    world = pd.concat([
        simulate("confidence_threshold", 8000, seed=26, split={"control": 0.5, "fallback_low_conf": 0.5},
                 conversion={"control": 0.12, "fallback_low_conf": 0.2}, cost={"fallback_low_conf": 0.006}),
        simulate("srm_test", 2000, seed=27, split={"control": 0.6, "treatment": 0.4}, feature="recs"),
    ], ignore_index=True)
    load_rows(data, world)
    write_registry(data, "experiments:\n  - id: srm_test\n    weights: {control: 0.5, treatment: 0.5}\n")
    result = dg.materialize([experiment_readouts], partition_key=AS_OF,
                            resources={"warehouse": WarehouseResource(data_dir=str(data.root))})
    assert result.success
    mat = result.get_asset_materialization_events()[0].materialization
    assert mat.metadata["experiments"].value == 2
    assert "confidence_threshold" in mat.metadata["readout"].value
    assert "```" in mat.metadata["readout"].value  # the forest plot
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {MIXED_CHECK: True, SRM_CHECK: False}
    assert (data.reports / "experiments" / "confidence_threshold.md").exists()
    decisions = dict(warehouse_query(data, "SELECT DISTINCT experiment_id, decision FROM marts.experiment_readouts"))
    assert decisions == {"confidence_threshold": "ship", "srm_test": "invalid"}
    spec = experiment_readouts.specs_by_key[dg.AssetKey(["marts", "experiment_readouts"])]
    assert spec.group_name == "experiments" and set(spec.kinds) == {"duckdb", "python"}
    assert dg.AssetKey(["marts", "joined_outcomes"]) in {d.asset_key for d in spec.deps}


def test_asset_fails_with_a_clear_reason_without_joined_outcomes(data):
    result = dg.materialize([experiment_readouts], partition_key=AS_OF, raise_on_error=False,
                            resources={"warehouse": WarehouseResource(data_dir=str(data.root))})
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "materialize marts/joined_outcomes first" in str(failure.step_failure_data.error.cause.message)


def warehouse_query(data, sql: str):
    with warehouse.connect(data) as con:
        return con.execute(sql).fetchall()


def test_registered_experiment_without_exposures_in_its_window_is_skipped(data):
    load_rows(data, simulate("moved", 300, seed=28))  # exposures 06-01 .. 06-07
    registry = write_registry(data, "experiments:\n  - id: moved\n    start: 2025-06-08\n")
    s = run(data, as_of="2025-06-09", registry=registry)
    assert s.experiments == [] and s.skipped == {"moved": "no exposures between 2025-06-08 and 2025-06-09"}
