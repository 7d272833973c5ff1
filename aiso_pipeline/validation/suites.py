"""The Great Expectations suites: one per raw stream and partition, evaluated by GX inside DuckDB.

The batch is a GX query asset selecting the partition (`WHERE dt = <day>`), so every expectation compiles to SQL
on that day's rows. Each expectation carries `meta.check`, the Dagster check it belongs to (checks.py), and GX's own `severity`
(critical for ERROR, warning for WARN) so the JSON report reads the same as the Dagster checks.

Two passes keep GX close to the cost of one hand-written query:
1. the whole suite with result format BASIC and `partial_unexpected_count: 0`: GX computes the unexpected counts
   as aggregate metrics, bundled into a few SELECTs, and skips the per-expectation sample queries (LIMIT 0).
   Uniqueness is judged here by `expect_column_proportion_of_unique_values_to_be_between(min_value=1)`, a
   COUNT(DISTINCT) that rides in the same aggregate query; `expect_column_values_to_be_unique` would add a window
   function over the whole partition (2x the time of everything else at 10M rows);
2. only for the expectations that failed: the expectation again (for uniqueness: the row-level
   `expect_column_values_to_be_unique`) with SUMMARY and `unexpected_index_column_names` = the stream's id (plus a
   useful column), for the unexpected count and a few failing rows. Its result replaces pass 1's in the report.
A good partition pays for pass 1 only.
"""
from __future__ import annotations

import datetime as dt_
from dataclasses import dataclass
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.expectations.metadata_types import FailureSeverity
from great_expectations.expectations.row_conditions import Column

from aiso_pipeline.validation.gx_duckdb import gx_session

ID_COLUMN = {"inference": "request_id", "product": "message_id"}
EXTRA_INDEX_COLUMNS = {"unpriced_share": ["model"]}  # shown beside the id in failing examples
PASS1 = {"result_format": "BASIC", "partial_unexpected_count": 0}


def _window(day: dt_.date, days: int | float) -> tuple[dt_.datetime, dt_.datetime]:
    start = dt_.datetime.combine(day, dt_.time(), dt_.timezone.utc)
    return start - dt_.timedelta(days=days), start + dt_.timedelta(days=1 + days)


def unique(column: str) -> gxe.Expectation:
    """Pass 1's uniqueness: distinct non-NULL values / non-NULL values = 1 (an aggregate GX bundles)."""
    return gxe.ExpectColumnProportionOfUniqueValuesToBeBetween(column=column, min_value=1.0)


def detailed(config) -> gxe.Expectation:
    """Pass 2's expectation for a failed pass-1 expectation: the same, or for uniqueness the row-level one."""
    expectation = config.to_domain_obj()
    if config.type == "expect_column_proportion_of_unique_values_to_be_between":
        expectation = gxe.ExpectColumnValuesToBeUnique(
            column=config.kwargs["column"], meta=dict(config.meta or {}), severity=expectation.severity)
    return expectation


def expectations(stream: str, day: dt_.date, cfg: dict) -> list[gxe.Expectation]:
    """The suite of `stream` for partition `day`, thresholds from `cfg[stream]`."""
    c = cfg[stream]

    def tag(check: str, *items: gxe.Expectation) -> list[gxe.Expectation]:
        severity = FailureSeverity.CRITICAL if c[check]["severity"] == "ERROR" else FailureSeverity.WARNING
        for e in items:
            e.meta = {"check": check}
            e.severity = severity
        return list(items)

    lo, hi = _window(day, c["timestamps_in_window"]["days"])
    window = tag("timestamps_in_window", gxe.ExpectColumnValuesToBeBetween(
        column="timestamp", min_value=lo, max_value=hi, strict_max=True,
        mostly=1 - c["timestamps_in_window"]["max_share"]))
    if stream == "inference":
        return [
            *tag("required_keys_not_null",
                 *(gxe.ExpectColumnValuesToNotBeNull(column=col) for col in ("request_id", "timestamp", "model"))),
            *tag("request_id_unique", unique("request_id")),
            *tag("status_accepted_values", gxe.ExpectColumnValuesToBeInSet(
                column="status", value_set=list(c["status_accepted_values"]["values"]))),
            *tag("values_in_range",
                 *(gxe.ExpectColumnValuesToBeBetween(column=col, min_value=0)
                   for col in ("input_tokens", "output_tokens", "cached_input_tokens", "latency_ms")),
                 gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                     column_A="input_tokens", column_B="cached_input_tokens", or_equal=True,
                     ignore_row_if="either_value_is_missing"),
                 gxe.ExpectColumnValuesToBeBetween(column="confidence", min_value=0, max_value=1),
                 gxe.ExpectColumnValuesToBeBetween(column="sample_rate", min_value=0, max_value=1, strict_min=True)),
            *window,
            *tag("unpriced_share", gxe.ExpectColumnValuesToNotBeNull(
                column="cost_usd", mostly=1 - c["unpriced_share"]["max_share"])),
        ]
    if stream == "product":
        return [
            *tag("required_keys_not_null",
                 *(gxe.ExpectColumnValuesToNotBeNull(column=col) for col in ("message_id", "event", "timestamp")),
                 # at least one identity: user_id is set wherever anonymous_id is not
                 gxe.ExpectColumnValuesToNotBeNull(column="user_id", row_condition=Column("anonymous_id").is_null())),
            *tag("message_id_unique", unique("message_id")),
            *window,
        ]
    raise ValueError(f"unknown stream {stream!r}")


@dataclass
class SuiteRun:
    """GX's suite validation result (pass 2 results swapped in) and, per expectation result, its examples."""

    result: Any  # great_expectations ExpectationSuiteValidationResult
    examples: dict[int, list[dict]]  # index in result.results -> failing rows (id column and checked columns)


def run_suite(con, stream: str, day: dt_.date, cfg: dict) -> SuiteRun:
    """Validate the partition `day` of raw.<stream>_events with GX, on the pipeline connection `con`."""
    n_examples = cfg["examples"]
    with gx_session(con) as (context, datasource):
        asset = datasource.add_query_asset(
            f"{stream}_events", query=f"SELECT * FROM raw.{stream}_events WHERE dt = DATE '{day.isoformat()}'")
        batch = asset.add_batch_definition_whole_table(f"dt={day.isoformat()}").get_batch()
        suite = context.suites.add(gx.ExpectationSuite(
            name=f"raw_{stream}_events", expectations=expectations(stream, day, cfg),
            meta={"stream": stream, "dt": day.isoformat()}))
        result = batch.validate(suite, result_format=PASS1)
        examples: dict[int, list[dict]] = {}
        for i, evr in enumerate(result.results):
            if evr.success or (n_examples == 0 and evr.result.get("unexpected_count") is not None) \
                    or (evr.exception_info or {}).get("raised_exception"):
                continue
            check = evr.expectation_config.meta.get("check")
            index = [ID_COLUMN[stream], *EXTRA_INDEX_COLUMNS.get(check, [])]
            second = batch.validate(detailed(evr.expectation_config), result_format={
                "result_format": "SUMMARY", "partial_unexpected_count": n_examples,
                "unexpected_index_column_names": index})
            result.results[i] = second
            examples[i] = list(second.result.get("partial_unexpected_index_list") or [])[:n_examples]
    return SuiteRun(result, examples)
