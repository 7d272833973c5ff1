"""marts.scorecard: figures from the day's marts, statuses against scorecard.yaml, the visibility score formula."""
from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from scipy import stats as sps

from aiso_pipeline import anomalies, experiments, monitoring, outcomes, warehouse
from aiso_pipeline.config import data_dir
from aiso_pipeline.defs.monitoring import marts_scorecard
from aiso_pipeline.defs.resources import WarehouseResource
from aiso_pipeline.monitoring import scorecard

DT = date(2025, 6, 10)


def test_the_score_is_the_weighted_share_of_credit_over_the_checks_that_apply():
    w = {c.name: c.weight for c in scorecard.checks()}
    assert w["join_rate"] == 3 and w["error_rate"] == 2 and w["fallback_rate"] == 1  # as declared
    statuses = {"join_rate": "fail", "error_rate": "pass", "fallback_rate": "warn", "ece": "n/a"}
    # by hand: (3 x 0 + 2 x 1 + 1 x 0.5) / (3 + 2 + 1) = 2.5 / 6
    assert scorecard.score(statuses) == pytest.approx(100 * 2.5 / 6)
    assert scorecard.score({"ece": "n/a"}) is None
    assert scorecard.score({c.name: "pass" for c in scorecard.checks()}) == 100


def test_statuses_and_reasons_follow_the_declared_targets():
    join = next(c for c in scorecard.checks() if c.name == "join_rate")
    assert [join.status(v) for v in (0.97, 0.95, 0.9, 0.8, 0.5, None)] == \
        ["pass", "pass", "warn", "warn", "fail", "n/a"]
    assert join.reason(0.401, "fail") == "join_rate 40.1% is below its target ≥ 95.0% and fails (< 80.0%)"
    assert join.reason(0.9497, "warn").startswith("join_rate 94.970% is below its target ≥ 95.0%")
    errors = next(c for c in scorecard.checks() if c.name == "error_rate")
    assert [errors.status(v) for v in (0.01, 0.03, 0.06)] == ["pass", "warn", "fail"]


def test_power_at_the_mde_is_the_design_power():
    assert scorecard.power_at(0.1, 0.1, 0.05) == pytest.approx(0.8, abs=1e-12)
    # at twice the MDE: Phi(2 (z_a + z_p) - z_a), by hand
    z_a, z_p = sps.norm.ppf(0.975), sps.norm.ppf(0.8)
    assert scorecard.power_at(0.2, 0.1, 0.05) == pytest.approx(sps.norm.cdf(2 * (z_a + z_p) - z_a), abs=1e-12)
    assert scorecard.power_at(0.05, float("nan"), 0.05) == 0.0


def test_readme_table_of_checks_is_generated_from_the_declaration():
    from aiso_pipeline.monitoring import docs
    text = (Path(__file__).parent.parent / "README.md").read_text()
    assert docs.section() in text, "run: .venv/bin/python -m aiso_pipeline.monitoring.docs README.md"


def _marts(con, day: date, model: str, *, cost=10.0, cps=0.02, cpc=0.5, requests=1000.0, error=0.01,
           fallback=0.05, joined=0.97, ece=None, gap=None, search_joined=None, tiny_joined=None, successes=2000,
           conversions=400, gap_worse=True):
    """One model's day in the marts the scorecard reads, two features with the given figures (search's join rate
    apart when given), and a third with 4% of the calls when `tiny_joined` is given; its joined calls hold
    `successes` and `conversions` (weight 1: the effective counts the cost trends' noise rests on)."""
    con.execute("""INSERT INTO marts.joined_outcomes (request_id, dt, "timestamp", model, weight, has_outcome,
                   events_attributed, success, converted, revenue, window_closed)
                   SELECT ? || i, ?, ?::TIMESTAMPTZ, ?, 1, true, 1, i < ?, i < ?, 0, true
                   FROM range(?) AS t(i)""",
                [f"{model}-{day}-", day, f"{day} 12:00:00+00", model, successes, conversions,
                 max(successes, conversions)])
    shares = (("chat", 0.75), ("search", 0.25)) if tiny_joined is None else \
        (("chat", 0.71), ("search", 0.25), ("tiny", 0.04))
    for feature, share in shares:
        j = {"search": search_joined, "tiny": tiny_joined}.get(feature) or joined
        con.execute("""INSERT INTO marts.cost_daily (dt, model, feature, requests, request_rows, cost_usd,
                       cost_per_success, cost_per_conversion, error_rate, fallback_rate, window_closed,
                       unpriced_requests, successes, conversions, revenue)
                       VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, true, 0, 0, 0, 0)""",
                    [day, model, feature, requests * share, cost * share, cps, cpc, error, fallback])
        con.execute("""INSERT INTO marts.outcome_coverage (dt, model, feature, inferences, joined, join_rate,
                       inference_rows, joined_rows, window_closed) VALUES (?, ?, ?, ?, ?, ?, 1, 1, true)""",
                    [day, model, feature, requests * share, requests * share * j, j])
    if ece is not None:
        con.execute("INSERT INTO marts.calibration (dt, model, feature, n, calls, ece, window_closed) "
                    "VALUES (?, ?, 'chat', 300, 300, ?, true), (?, ?, 'search', 100, 100, ?, true)",
                    [day, model, ece, day, model, ece + 0.04])
    if gap is not None:
        con.execute("""INSERT INTO marts.slice_metrics (dt, model, feature, slice_key, slice_value, requests,
                       calls, gap_vs_model, tested, worse, window_closed)
                       VALUES (?, ?, 'chat', 'features.language', 'es', 200, 200, ?, true, ?, true),
                              (?, ?, 'chat', 'features.language', 'de', 200, 200, 0.01, true, false, true)""",
                    [day, model, gap, gap_worse, day, model])


def test_figures_come_from_the_days_marts_and_trends_from_the_trailing_week(tmp_path):
    data = data_dir(tmp_path / "data")
    with warehouse.connect(data) as con:
        outcomes.ensure_tables(con)
        monitoring.ensure_tables(con)
        anomalies.ensure_table(con)
        experiments.ensure_tables(con)
        for i in range(7, 0, -1):  # a week at 0.02 per success, then today 22.5% dearer; m3: 40 conversions a
            _marts(con, DT - timedelta(days=i), "m1")  # day, m4: 4
            _marts(con, DT - timedelta(days=i), "m3", conversions=40)
            _marts(con, DT - timedelta(days=i), "m4", conversions=4)
            scorecard.build(con, str(DT - timedelta(days=i)))
        _marts(con, DT, "m1", cps=0.0245, joined=0.9, ece=0.03, gap=-0.06, error=0.03, search_joined=0.7,
               tiny_joined=0.1)
        _marts(con, DT, "m2", joined=0.5, gap=-0.06, gap_worse=False)  # a gap the slice test found no evidence of
        _marts(con, DT, "m3", cpc=0.8, conversions=40)  # today 60% dearer per conversion
        _marts(con, DT, "m4", cpc=5.0, conversions=4)  # ten times dearer on 4 conversions
        con.execute("""INSERT INTO marts.anomalies (dt, kind, model, metric, severity, anomaly_id, detected_at)
                       VALUES (?, 'spike', 'm1', 'cost_usd', 'warning', 'a1', now())""", [DT])
        rows = scorecard.build(con, str(DT)).set_index("model")
        checks = con.execute("SELECT model, check_name, status, reason FROM marts.scorecard_checks WHERE dt = ?",
                             [DT]).df()
    m1 = rows.loc["m1"]
    assert m1.join_rate == pytest.approx(0.71 * 0.9 + 0.25 * 0.7 + 0.04 * 0.1)
    # the least-joined feature with >= 5% of the calls: search (tiny's 4% is left out)
    assert m1.feature_join_rate == pytest.approx(0.7) and m1.worst_join_feature == "search"
    assert m1.cost_per_success == pytest.approx(0.0245)
    assert m1.cost_per_success_trend == pytest.approx(0.225)
    assert m1.ece == pytest.approx((300 * 0.03 + 100 * 0.07) / 400)  # weighted by n
    assert m1.worst_slice_gap == pytest.approx(-0.06) and m1.worst_slice == "chat features.language=es"
    assert m1.open_anomalies == 1 and m1.error_rate == pytest.approx(0.03)
    statuses = {c.name: m1[f"{c.name}_status"] for c in scorecard.checks()}
    assert statuses == {"join_rate": "warn", "feature_join_rate": "fail", "drift_detect_hours": "n/a", "experiment_power": "n/a",
                        "cost_per_success_trend": "warn", "cost_per_conversion_trend": "pass",
                        "latency_p95_trend": "n/a", "error_rate": "warn", "fallback_rate": "pass", "ece": "pass",
                        "worst_slice_gap": "fail", "open_anomalies": "warn"}
    assert m1.visibility_score == pytest.approx(scorecard.score(statuses))
    assert m1.failing == "feature_join_rate, worst_slice_gap"
    reason = checks[(checks.model == "m1") & (checks.check_name == "feature_join_rate")].reason.iloc[0]
    assert reason == "feature_join_rate 70.0% (search) is below its target ≥ 95.0% and fails (< 80.0%)"
    m2 = rows.loc["m2"]
    assert m2.join_rate_status == "fail" and "join_rate 50.0% is below its target ≥ 95.0%" in \
        checks[(checks.model == "m2") & (checks.check_name == "join_rate")].reason.iloc[0]
    assert m2.cost_per_success_trend_status == "n/a"  # no history yet for m2
    assert m2.worst_slice_gap == pytest.approx(-0.06) and m2.worst_slice_gap_status == "pass"
    assert checks[(checks.model == "m2") & (checks.check_name == "worst_slice_gap")].reason.iloc[0] == \
        "worst_slice_gap -6.0% (chat features.language=es; significant slices only: +0.0%) meets ≥ -2.0%"
    # judged net of noise: m1's +22.5% on 2,000 successes (14,000 in the week before) is still a warning ...
    se = math.sqrt(1 / 2000 + 1 / 14000)
    assert 1.225 * math.exp(-1.645 * se) - 1 == pytest.approx(0.1778, abs=1e-4)  # between +10% and +25%: warn
    # ... m3's +60% on 40 conversions (280 in the week) is +21.2% net of noise: (1.6) e^(-1.645 sqrt(1/40 +
    # 1/280)) - 1, a warning, not a failure
    m3 = rows.loc["m3"]
    assert m3.cost_per_conversion_trend == pytest.approx(0.6)
    assert m3.cost_per_conversion_trend_status == "warn"
    reason = checks[(checks.model == "m3") & (checks.check_name == "cost_per_conversion_trend")].reason.iloc[0]
    assert reason.startswith("cost_per_conversion_trend +60.0% (net of noise: +21.2%) is above its target")
    # ... and m4's tenfold cost per conversion on 4 conversions is too noisy to judge
    m4 = rows.loc["m4"]
    assert m4.cost_per_conversion_trend == pytest.approx(9.0) and m4.cost_per_conversion_trend_status == "n/a"
    reason = checks[(checks.model == "m4") & (checks.check_name == "cost_per_conversion_trend")].reason.iloc[0]
    assert reason == "cost_per_conversion_trend +900.0% not judged: 4 effective conversions that day, fewer than 30"


def test_the_asset_materializes_with_the_failing_cells(tmp_path):
    data = data_dir(tmp_path / "data")
    with warehouse.connect(data) as con:
        outcomes.ensure_tables(con)
        monitoring.ensure_tables(con)
        _marts(con, DT, "m1", joined=0.4)
    result = dg.materialize([marts_scorecard], partition_key=str(DT),
                            resources={"warehouse": WarehouseResource(data_dir=str(data.root))})
    assert result.success
    meta = result.get_asset_materialization_events()[0].event_specific_data.materialization.metadata
    assert "join_rate 40.0% is below its target" in meta["not_passing"].value
    con = duckdb.connect(str(data.work_db), read_only=True)
    assert con.execute("SELECT join_rate_status FROM marts.scorecard").fetchall() == [("fail",)]
    con.close()


def test_model_cards_hold_the_scorecard_decision_log_and_escape_the_data(tmp_path):
    from aiso_pipeline.monitoring import cards
    data = data_dir(tmp_path / "data")
    hostile = "<script>alert(1)</script>|m"
    with warehouse.connect(data) as con:
        outcomes.ensure_tables(con)
        monitoring.ensure_tables(con)
        anomalies.ensure_table(con)
        experiments.ensure_tables(con)
        for i, decision in enumerate(["keep_running", "keep_running", "ship"]):
            day = DT - timedelta(days=2 - i)
            _marts(con, day, hostile, joined=0.4)
            con.execute("""INSERT INTO marts.joined_outcomes (request_id, dt, "timestamp", model, experiment_id,
                           weight, has_outcome, events_attributed, success, converted, revenue, window_closed)
                           VALUES (?, ?, now(), ?, 'exp1', 1, true, 0, true, false, 0, true)""",
                        [f"r{i}", day, hostile])
            con.execute("""INSERT INTO marts.experiment_readouts (dt, experiment_id, metric, variant, control_variant,
                           is_guardrail, significant, srm_flag, metric_role, decision, decision_reason)
                           VALUES (?, 'exp1', 'conversion_rate', 'b', 'a', false, false, false, 'primary', ?, ?)""",
                        [day, decision, f"reason {i}"])
            scorecard.build(con, str(day))
        paths = cards.write_cards(con, str(DT), data.reports, {hostile: "team <b>x</b>"})
    names = sorted(p.name for p in paths)
    assert len(names) == 3 and "_index.md" in names  # .md and .html of the one model, and the index
    md = next(p for p in paths if p.suffix == ".md" and p.name != "_index.md").read_text()
    page = next(p for p in paths if p.suffix == ".html").read_text()
    assert "<script>" not in md and "<script>" not in page and "&lt;script&gt;" in page
    assert "owner: team &lt;b&gt;x&lt;/b&gt;" in page
    log = md[md.index("## Decision log"):md.index("## Known issues")]
    # the days the decision changed, newest first, linked to the readout page
    assert [line.split(" | ")[2] for line in log.splitlines() if line.startswith(f"| {DT - timedelta(days=2)}")
            or line.startswith(f"| {DT}")] == ["ship", "keep_running"]
    assert "(../experiments/exp1.md)" in log and "reason 1" not in log
    assert "join_rate 40.0% is below its target" in md
