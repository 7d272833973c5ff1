"""Monitoring assets: calibration (with its reliability curve), the confidence-threshold curve and slice parity,
per day from the day's joined outcomes. In the `outcomes` group: refreshed with the day while its attribution
window is open (later product events turn calls into successes)."""
import dagster as dg

from aiso_pipeline import monitoring
from aiso_pipeline.defs.metadata import RawMarkdown, markdown_table, table_metadata
from aiso_pipeline.defs.outcomes import JOINED
from aiso_pipeline.defs.resources import DAILY, OWNERS, POOL, WarehouseResource, daily_asset
from aiso_pipeline.text import safe_slug

CALIBRATION = dg.AssetKey(["marts", "calibration"])
THRESHOLD_CURVE = dg.AssetKey(["marts", "threshold_curve"])
SLICES = dg.AssetKey(["marts", "slice_metrics"])
RAW_INFERENCES = dg.AssetKey(["raw", "inference_events"])


def _spec(key: dg.AssetKey, description: str) -> dg.AssetSpec:
    return dg.AssetSpec(key, deps=[JOINED, RAW_INFERENCES], group_name="outcomes", kinds={"duckdb", "sql"},
                        owners=OWNERS, description=description)


@dg.multi_asset(
    specs=[
        _spec(CALIBRATION, "Per day × model × feature: is confidence a probability of success? n (weighted calls "
                           "with a confidence), Brier score, ECE over 10 equal-width bins (weights 1/sample_rate, "
                           "success as the label), and the reliability curve per bin in marts.calibration_bins."),
        _spec(THRESHOLD_CURVE, "Per day × model × feature × threshold 0.05 … 0.95: a policy serving a fallback "
                               "below the threshold — share that would fall back, success rate above and below, "
                               "cost saved at the cost of the day's observed fallbacks."),
        _spec(SLICES, "Per day × model × feature × declared input value (reference/monitoring.yaml: slices): "
                      "success, conversion, cost per success, p95 latency, the gap to the model, and a one-sided "
                      "test against the rest of the model beyond a margin (Benjamini-Hochberg); `worse` slices "
                      "become parity anomalies."),
    ],
    partitions_def=DAILY,
    pool=POOL,
)
def monitoring_marts(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    dt = context.partition_key
    config = monitoring.load(warehouse.data())
    with warehouse.connect() as con:
        s = monitoring.build(con, dt, config)
        cal_meta = table_metadata(con, "marts.calibration", dt, preview_rows=10)
        curve_meta = table_metadata(con, "marts.threshold_curve", dt)
        slice_meta = table_metadata(con, "marts.slice_metrics", dt)
        reliability = con.execute(
            """WITH top AS (SELECT model, feature, ece FROM marts.calibration WHERE dt = ? ORDER BY n DESC LIMIT 1)
               SELECT b.model, b.feature, b.bin_low, b.bin_high, b.weight, b.mean_confidence, b.success_rate
               FROM marts.calibration_bins b JOIN top t ON t.model = b.model
                    AND t.feature IS NOT DISTINCT FROM b.feature
               WHERE b.dt = ? ORDER BY b.bin""", [dt, dt]).fetchall()
        worst_ece = con.execute(
            """SELECT model, feature, n, brier, ece FROM marts.calibration WHERE dt = ?
               ORDER BY ece DESC NULLS LAST LIMIT 10""", [dt]).fetchall()
        curve = con.execute(
            """WITH top AS (SELECT model, feature FROM marts.threshold_curve WHERE dt = ? AND threshold = 0.5
                            ORDER BY calls DESC LIMIT 1)
               SELECT c.model, c.feature, c.threshold, c.fallback_share, c.success_rate_above,
                      c.success_rate_below, c.cost_saved_usd
               FROM marts.threshold_curve c JOIN top t ON t.model = c.model AND t.feature IS NOT DISTINCT FROM c.feature
               WHERE c.dt = ? ORDER BY c.threshold""", [dt, dt]).fetchall()
        worst = con.execute(
            """SELECT model, feature, slice_key, slice_value, requests, success_rate, rest_success_rate,
                      p_value_adjusted, worse
               FROM marts.slice_metrics WHERE dt = ? AND tested
               ORDER BY worse DESC, p_value_adjusted, gap_vs_model LIMIT 10""", [dt]).fetchall()
    diagram = markdown_table(["model", "feature", "bin from", "to", "weight", "mean confidence", "success rate",
                              "confidence vs outcome"],
                             [(*r, "█" * round(20 * r[5]) + " | " + "█" * round(20 * r[6])) for r in reliability])
    if s.values_dropped:
        context.log.warning(f"{s.values_dropped} slice values beyond the {config.slice_max_values} most requested "
                            "per model × feature × key were not reported")
    yield dg.MaterializeResult(asset_key=CALIBRATION, metadata={
        **cal_meta, "models_calibrated": s.calibrated,
        "reliability_diagram": dg.MetadataValue.md(diagram),
        "worst_ece": dg.MetadataValue.md(markdown_table(["model", "feature", "n", "brier", "ece"], worst_ece))})
    yield dg.MaterializeResult(asset_key=THRESHOLD_CURVE, metadata={
        **curve_meta, "curve_of_the_busiest": dg.MetadataValue.md(markdown_table(
            ["model", "feature", "threshold", "fallback share", "success above", "success below", "cost saved $"],
            curve))})
    yield dg.MaterializeResult(asset_key=SLICES, metadata={
        **slice_meta, "slices": s.slices, "tested": s.tested, "worse": s.worse, "values_dropped": s.values_dropped,
        "worst_slices": dg.MetadataValue.md(markdown_table(
            ["model", "feature", "input", "value", "requests", "success", "rest", "p adj.", "worse"], worst))})


SCORECARD = dg.AssetKey(["marts", "scorecard"])


@daily_asset(
    SCORECARD,
    group="monitoring",
    deps=[dg.AssetKey(["marts", "cost_daily"]), dg.AssetKey(["marts", "outcome_coverage"]), CALIBRATION, SLICES,
          dg.AssetKey(["marts", "anomalies"]), dg.AssetKey(["marts", "experiment_readouts"]), JOINED],
    description="The visibility scorecard per day × model: join rate, drift detection delay, power of the running "
                "experiments, cost per success and per conversion (7-day trends), p95 latency trend, error and "
                "fallback rates, calibration error, worst slice gap and open anomalies, each against its target "
                "(monitoring/scorecard.yaml) with a pass / warn / fail status and reason, and a 0–100 visibility "
                "score; long form in marts.scorecard_checks.",
)
def marts_scorecard(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    from aiso_pipeline.monitoring import cards, scorecard

    dt = context.partition_key
    data = warehouse.data()
    owners = monitoring.load(data).model_owners
    with warehouse.connect() as con:
        rows = scorecard.build(con, dt)
        pages = cards.write_cards(con, dt, data.reports, owners)
        meta = table_metadata(con, "marts.scorecard", dt)
        cells = con.execute(
            """SELECT model, check_name, status, reason FROM marts.scorecard_checks
               WHERE dt = ? AND status IN ('fail', 'warn') ORDER BY status = 'fail' DESC, model, check_name
               LIMIT 40""", [dt]).fetchall()
    card_of = {p.stem: p for p in pages if p.suffix == ".html"}
    table = markdown_table(["model", "score", "failing", "model card"],
                           [(r.model, r.visibility_score, r.failing,
                             RawMarkdown(f"[card](file://{card_of[safe_slug(r.model)]})"))
                            for r in rows.itertuples()])
    return dg.MaterializeResult(metadata={
        **meta, "scorecard": dg.MetadataValue.md(table),
        "not_passing": dg.MetadataValue.md(markdown_table(["model", "check", "status", "reason"], cells)),
        "model_cards": dg.MetadataValue.path(str(data.reports / "model_cards")),
        "lowest_score": float(rows.visibility_score.min()) if len(rows) and rows.visibility_score.notna().any()
        else 0.0})
