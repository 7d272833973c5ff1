"""Experiment readouts asset: marts.joined_outcomes → marts.experiment_readouts and reports/experiments/*.md.

Thin wiring around aiso_pipeline.experiments. The readout of day D is cumulative from each experiment's start
to D; the dependency on joined_outcomes is drawn for D only (Dagster cannot draw "every day up to D"), so a
rerun of an older joined_outcomes partition does not mark later readouts stale: rerun them, or let the next
nightly run pick the change up.
"""
import dagster as dg

from aiso_pipeline import experiments
from aiso_pipeline.defs.metadata import markdown_table, table_metadata
from aiso_pipeline.defs.resources import DAILY, OWNERS, POOL, WarehouseResource
from aiso_pipeline.errors import AisoError

READOUTS = dg.AssetKey(["marts", "experiment_readouts"])
JOINED = dg.AssetKey(["marts", "joined_outcomes"])
MIXED_CHECK = "no_mixed_variant_users"
SRM_CHECK = "no_sample_ratio_mismatch"

DESCRIPTION = (
    "A/B readouts as of each day, cumulative since each experiment's start (CONTRACT section 6): one row per "
    "experiment × metric × non-control variant with lift, CI, p-values (Holm over primary + secondary; guardrails "
    "one-sided for harm), SRM, MDE and one decision per experiment (ship / stop / keep_running / invalid). "
    "Unit: user; exposure: the user's first inference tagged with the experiment; users in two variants are "
    "excluded and counted. Per-user sufficient statistics are computed in DuckDB (CUPED on the 14 days before "
    "exposure), statistics in aiso_pipeline.stats. Settings from reference/experiments.yaml (optional); "
    "a page per experiment in reports/experiments/."
)


@dg.asset(
    key=READOUTS,
    description=DESCRIPTION,
    deps=[JOINED],
    check_specs=[
        dg.AssetCheckSpec(MIXED_CHECK, asset=READOUTS, blocking=False,
                          description="No user is seen in more than one variant of an experiment (those users are "
                                      "excluded from the readout; a few usually mean leaky assignment)."),
        dg.AssetCheckSpec(SRM_CHECK, asset=READOUTS, blocking=False,
                          description="Users per variant match the expected split (chi-square p >= 0.001); a "
                                      "mismatch makes the experiment `invalid`."),
    ],
    partitions_def=DAILY,
    group_name="experiments",
    kinds={"duckdb", "python"},
    owners=OWNERS,
    pool=POOL,
)
def experiment_readouts(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    data = warehouse.data()
    registry = experiments.load(data.experiments)
    dt = context.partition_key
    with warehouse.connect() as con:
        exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'marts' "
                             "AND table_name = 'joined_outcomes'").fetchone()[0]
        if not exists:
            raise AisoError("marts.joined_outcomes does not exist: materialize marts/joined_outcomes first")
        summary = experiments.build_experiment_readouts(con, dt, registry, data.reports)
        meta = table_metadata(con, "marts.experiment_readouts", dt, preview_rows=10)
    if not summary.experiments:
        context.log.info(f"no experiment to read out as of {dt}")
    per_exp = [(e.experiment_id, e.decision, sum(e.units.values()), e.mixed_variant_users,
                e.srm_p_value, "yes" if e.config.registered else "no") for e in summary.experiments]
    mixed = [(e.experiment_id, e.mixed_variant_users) for e in summary.experiments if e.mixed_variant_users]
    srm = [(e.experiment_id, e.srm_p_value, ", ".join(f"{v} {n}" for v, n in sorted(e.units.items())))
           for e in summary.experiments if e.srm_flag]
    return dg.MaterializeResult(
        metadata={
            **meta,
            "experiments": len(summary.experiments),
            "decisions": dg.MetadataValue.md(markdown_table(
                ["experiment", "decision", "users", "mixed-variant users", "SRM p", "registered"], per_exp)
                if per_exp else "_none_"),
            "readout": dg.MetadataValue.md(experiments.summary_markdown(summary)),
            "mixed_variant_users": summary.mixed_variant_users,
            "not_read_out": dg.MetadataValue.md(markdown_table(["experiment", "why"], list(summary.skipped.items()))
                                                if summary.skipped else "_none_"),
            "registry": dg.MetadataValue.path(str(data.experiments)),
            "registry_found": data.experiments.exists(),
            "reports": dg.MetadataValue.path(str(data.reports / "experiments")),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=MIXED_CHECK, passed=not mixed, severity=dg.AssetCheckSeverity.WARN,
                metadata={"mixed_variant_users": summary.mixed_variant_users,
                          "by_experiment": dg.MetadataValue.md(markdown_table(["experiment", "users excluded"], mixed)
                                                               if mixed else "_none_")}),
            dg.AssetCheckResult(
                check_name=SRM_CHECK, passed=not srm, severity=dg.AssetCheckSeverity.ERROR,
                metadata={"threshold": 0.001,
                          "mismatched": dg.MetadataValue.md(markdown_table(["experiment", "SRM p", "users"], srm)
                                                            if srm else "_none_")}),
        ],
    )
