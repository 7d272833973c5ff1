"""Validation checks beside the raw assets: one multi-asset check per stream runs that stream's suite.

Every check is declared `blocking=True`; whether a failure blocks is its *runtime* severity, read from
reference/validation.yaml (packaged default, overridden by the data directory's): Dagster stops downstream
assets only for a failed check whose severity is ERROR, and reports WARN failures without stopping anything.

The checks are not partitioned themselves (partitioned asset checks are a preview API in Dagster 1.13); they
run inside the partitioned run of their asset and read the day from `context.partition_key`. The day is in each
result's metadata, and every partition's results are kept in quality.check_results and
reports/validation/<stream>/dt=YYYY-MM-DD.json.
"""
from collections.abc import Iterator

import dagster as dg

from aiso_pipeline.defs.metadata import markdown_table
from aiso_pipeline.defs.resources import POOL, WarehouseResource
from aiso_pipeline.errors import AisoError
from aiso_pipeline.validation import CHECKS, CheckOutcome, asset_key, report_path, validate_partition
from aiso_pipeline.validation.config import defaults

DEFAULTS = defaults()


def _settings_text(settings: dict) -> str:
    rest = ", ".join(f"{k}={v}" for k, v in settings.items() if k != "severity")
    return f"Default severity {settings['severity']}" + (f"; {rest}" if rest else "") + \
        " (reference/validation.yaml)."


def specs(stream: str) -> list[dg.AssetCheckSpec]:
    out = []
    for check in CHECKS[stream]:
        extra = []
        if check.name == "unknown_request_share":
            extra = [asset_key("inference")]  # reads raw.inference_events: run after it in the same run
        out.append(dg.AssetCheckSpec(
            check.name, asset=asset_key(stream), blocking=True, additional_deps=extra,
            description=f"{check.description} {_settings_text(DEFAULTS[stream][check.name])}",
            metadata={"kind": "great_expectations" if check.kind == "gx" else "sql", "observed": check.observed},
        ))
    return out


def result(stream: str, dt: str, outcome: CheckOutcome, report: str) -> dg.AssetCheckResult:
    examples = outcome.examples
    columns = list(dict.fromkeys(k for ex in examples for k in ex))
    metadata = {
        "partition": dt,
        "observed_value": (dg.MetadataValue.float(outcome.observed_value) if outcome.observed_value is not None
                           else dg.MetadataValue.text("n/a")),
        "threshold": outcome.threshold,
        "severity": outcome.severity,
        "examples": dg.MetadataValue.md(markdown_table(columns, [tuple(ex.get(c) for c in columns)
                                                                  for ex in examples]) if examples else "none"),
        "details": dg.MetadataValue.json(outcome.details),
        "report": dg.MetadataValue.path(report),
    }
    return dg.AssetCheckResult(
        asset_key=asset_key(stream), check_name=outcome.check_name, passed=outcome.passed,
        severity=dg.AssetCheckSeverity[outcome.severity], metadata=metadata,
        description=None if outcome.passed else f"observed {metadata['observed_value'].value} vs "
                                                f"{outcome.threshold}",
    )


def validation_checks(stream: str) -> dg.AssetChecksDefinition:
    @dg.multi_asset_check(
        name=f"validate_raw_{stream}_events",
        specs=specs(stream),
        description=f"Great Expectations suite and SQL checks of one raw.{stream}_events partition.",
        compute_kind="great_expectations",
        pool=POOL,
    )
    def _checks(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> Iterator[dg.AssetCheckResult]:
        if not context.has_partition_key:
            raise AisoError(f"the checks of raw.{stream}_events validate one day: launch them with a partition")
        dt = context.partition_key
        data = warehouse.data()
        with warehouse.connect() as con:
            outcomes = validate_partition(con, data, stream, dt)
        failed = [f"{o.check_name} ({o.severity})" for o in outcomes if not o.passed]
        if failed:
            context.log.warning(f"raw.{stream}_events dt={dt}: failed {', '.join(failed)}")
        report = str(report_path(data, stream, dt))
        for outcome in outcomes:
            yield result(stream, dt, outcome, report)

    return _checks


validate_raw_inference_events = validation_checks("inference")
validate_raw_product_events = validation_checks("product")
