"""Outcome and cost assets: raw events of a day → marts.joined_outcomes → marts.outcome_coverage, marts.cost_daily.

Thin wiring around aiso_pipeline.outcomes. joined_outcomes(D) depends on inference and product partitions
D .. D+k (k = ceil(window / 24 h)), so a late product event makes D stale and rematerializing D picks it up. The
window and the outcome events are the data directory's (reference/outcomes.yaml, outcomes.load_config), read in
that one place by the join, the schedule and the landing sensor; the lineage drawn in the UI uses the window of the
data directory the code location loaded with ($AISO_DATA_DIR).
"""
import dagster as dg

from aiso_pipeline import outcomes
from aiso_pipeline.config import data_dir
from aiso_pipeline.defs.metadata import markdown_table, table_metadata
from aiso_pipeline.defs.resources import DAILY, OWNERS, POOL, WarehouseResource
from aiso_pipeline.outcomes import charts

JOINED = dg.AssetKey(["marts", "joined_outcomes"])
COVERAGE = dg.AssetKey(["marts", "outcome_coverage"])
COST = dg.AssetKey(["marts", "cost_daily"])
WINDOW_DAYS = outcomes.load_config(data_dir()).window_days
# D reads D .. D+WINDOW_DAYS; for the newest partition the later days do not exist yet, which is fine.
FOLLOWING_DAYS = dg.TimeWindowPartitionMapping(start_offset=0, end_offset=WINDOW_DAYS)
JOIN_RATE_CHECK = "join_rate_at_least_95pct"
UNKNOWN_CHECK = "no_unknown_request_ids"
UNATTRIBUTED_CHECK = "unattributed_events_at_most_5pct"


def _pct(x):
    return None if x is None else round(100 * x, 2)


def _number(value) -> dg.MetadataValue:
    return dg.MetadataValue.float(float(value)) if value is not None else dg.MetadataValue.null()


@dg.asset(
    key=JOINED,
    description="One row per loaded inference of the day with the user outcome it led to (CONTRACT section 5): "
                "product events attributed by request_id, else to the user's latest inference at or before them "
                "(last touch), within the attribution window (default 24 h). has_outcome, success, converted, "
                "revenue; weight = 1/sample_rate; window_closed = later product data can no longer change the row. "
                "Unattributed product events and unknown request_ids of the day are counted in "
                "quality.check_results.",
    deps=[dg.AssetDep(["raw", "inference_events"], partition_mapping=FOLLOWING_DAYS),
          dg.AssetDep(["raw", "product_events"], partition_mapping=FOLLOWING_DAYS)],
    check_specs=[
        dg.AssetCheckSpec(UNKNOWN_CHECK, asset=JOINED, blocking=False,
                          description="Product events of the day naming a request_id that is no loaded inference."),
        dg.AssetCheckSpec(UNATTRIBUTED_CHECK, asset=JOINED, blocking=False,
                          description="At most 5% of the day's product events find no inference to attribute to."),
    ],
    partitions_def=DAILY,
    group_name="outcomes",
    kinds={"duckdb", "sql"},
    owners=OWNERS,
    pool=POOL,
)
def joined_outcomes(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    settings = outcomes.load_config(warehouse.data())
    dt = context.partition_key
    with warehouse.connect() as con:
        s = outcomes.build_joined_outcomes(con, dt, settings)
        meta = table_metadata(con, "marts.joined_outcomes", dt)
        head = outcomes.headline(con, dt)
    if s.inferences == 0:
        context.log.warning(f"no inferences loaded for {dt}: marts.joined_outcomes is empty for the day")
    counts = {"product_events": s.product_events, "unattributed_events": s.unattributed_events,
              "unknown_request_id": s.unknown_request_id}
    share = s.unattributed_events / s.product_events if s.product_events else 0.0
    return dg.MaterializeResult(
        metadata={**meta, "join_rate_pct": _number(_pct(s.join_rate)), "joined_rows": s.joined,
                  "weighted_inferences": float(s.weighted_inferences), "window_closed": s.window_closed,
                  "recomputed": s.recomputed,  # False: inputs unchanged since the last join; window_closed updated
                  "checks_recomputed": s.checked,  # False: the attribution checks' inputs unchanged
                  "extended": s.extended,  # True: only the events of partitions added since were joined and merged
                  "cost_per_success_usd": _number(head["cost_per_success"]),
                  "window_hours": settings.window_hours, **counts},
        check_results=[
            dg.AssetCheckResult(check_name=UNKNOWN_CHECK, passed=s.unknown_request_id == 0,
                                severity=dg.AssetCheckSeverity.WARN,
                                metadata={"observed": s.unknown_request_id, "threshold": 0, **counts}),
            dg.AssetCheckResult(check_name=UNATTRIBUTED_CHECK, passed=share <= outcomes.MAX_UNATTRIBUTED_SHARE,
                                severity=dg.AssetCheckSeverity.WARN,
                                metadata={"observed_share": share,
                                          "threshold": outcomes.MAX_UNATTRIBUTED_SHARE, **counts}),
        ],
    )


@dg.asset(
    key=COVERAGE,
    description="Join rate per day × model × feature: the weighted share of inferences (1/sample_rate) with at "
                "least one attributed product event, plus raw row counts. A WARN check flags any group below 0.95.",
    deps=[JOINED],
    check_specs=[dg.AssetCheckSpec(JOIN_RATE_CHECK, asset=COVERAGE, blocking=False,
                                   description="Every model × feature joins at least 95% of its inferences "
                                               "(weighted) to a product outcome.")],
    partitions_def=DAILY,
    group_name="outcomes",
    kinds={"duckdb", "sql"},
    owners=OWNERS,
    pool=POOL,
)
def outcome_coverage(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    dt = context.partition_key
    with warehouse.connect() as con:
        outcomes.build_outcome_coverage(con, dt)
        meta = table_metadata(con, "marts.outcome_coverage", dt, preview_rows=20)
        lowest, worst = outcomes.low_coverage(con, dt)
        head = outcomes.headline(con, dt)
    passed = lowest is None or lowest >= outcomes.MIN_JOIN_RATE
    worst_md = markdown_table(["model", "feature", "join_rate", "inferences", "joined", "rows"], worst) \
        if worst else "_every model × feature is at or above the threshold_"
    return dg.MaterializeResult(
        metadata={**meta, "join_rate_pct": _number(_pct(head["join_rate"]))},
        check_results=[dg.AssetCheckResult(
            check_name=JOIN_RATE_CHECK, passed=passed, severity=dg.AssetCheckSeverity.WARN,
            metadata={"observed_min_join_rate": _number(lowest), "threshold": outcomes.MIN_JOIN_RATE,
                      "groups_below": len(worst), "worst": dg.MetadataValue.md(worst_md)},
        )],
    )


@dg.asset(
    key=COST,
    description="Cost, outcomes and reliability per day × model × feature, every figure weighted by "
                "1/sample_rate: requests, tokens, cost (unpriced calls counted apart, never as $0), cost per 1k "
                "requests / per success / per conversion, error and fallback rates, weighted latency p50/p95/p99.",
    deps=[JOINED],
    partitions_def=DAILY,
    group_name="outcomes",
    kinds={"duckdb", "sql"},
    owners=OWNERS,
    pool=POOL,
)
def cost_daily(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    dt = context.partition_key
    with warehouse.connect() as con:
        outcomes.build_cost_daily(con, dt)
        meta = table_metadata(con, "marts.cost_daily", dt, preview_rows=20)
        head = outcomes.headline(con, dt)
        heatmap = charts.latency_heatmap(outcomes.latency_by_hour(con, dt))
        trend = charts.cost_trend(outcomes.cost_trend(con, dt, days=14))
    return dg.MaterializeResult(metadata={
        **meta,
        "requests": _number(head["requests"]),
        "cost_usd": _number(head["cost_usd"]),
        "cost_per_success_usd": _number(head["cost_per_success"]),
        "cost_per_conversion_usd": _number(head["cost_per_conversion"]),
        "join_rate_pct": _number(_pct(head["join_rate"])),
        "latency_p95_heatmap": dg.MetadataValue.md(heatmap),
        "cost_by_model_14d": dg.MetadataValue.md(trend),
    })
