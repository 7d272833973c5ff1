"""The checks on each raw stream: names, what they test, what their observed value means. No heavy imports.

Two kinds:
- `gx`: Great Expectations expectations on the partition's rows, evaluated by GX inside DuckDB (suites.py);
- `sql`: metrics that span tables or days (ingest log, trailing days, the other stream), hand-written SQL in
  sql/<stream>_metrics.sql, compared with their thresholds in Python (engine.py). GX 1.x expectations see one
  batch; wrapping a one-row SQL result in a GX asset would only add a second evaluation of the same numbers.
"""
from __future__ import annotations

from dataclasses import dataclass

from aiso_pipeline.config import STREAMS


@dataclass(frozen=True)
class Check:
    name: str
    kind: str  # "gx" | "sql"
    observed: str  # what observed_value counts: "rows", "share", "ratio", "files"
    description: str


_COMMON_TAIL = [
    Check("quarantine_share", "sql", "share",
          "Share of the day's rows read that ingestion quarantined (quality.ingest_log), at most `max_share`."),
    Check("files_quarantined", "sql", "files",
          "Landing files of the day rejected whole (empty, truncated, unreadable), at most `max_files`."),
    Check("volume", "sql", "ratio",
          "Rows loaded for the day over the median of the trailing `history_days` days that have rows, within "
          "[`min_ratio`, `max_ratio`]; passes with fewer than `min_history_days` days of history."),
    Check("freshness", "sql", "files",
          "Landing files were seen for the day (quality.ingest_log), at least `min_files`."),
]

CHECKS: dict[str, list[Check]] = {
    "inference": [
        Check("required_keys_not_null", "gx", "rows", "request_id, timestamp and model are never NULL."),
        Check("request_id_unique", "gx", "rows", "request_id is unique in the partition (rows sharing an id)."),
        Check("status_accepted_values", "gx", "rows", "status is one of `values` (default ok, error, timeout)."),
        Check("values_in_range", "gx", "rows",
              "Token counts >= 0 and cached_input_tokens <= input_tokens, latency_ms >= 0, confidence in [0, 1], "
              "sample_rate in (0, 1] (rows out of range, summed over the columns)."),
        Check("timestamps_in_window", "gx", "share",
              "Share of timestamps outside [dt - `days`, dt + 1 + `days`), at most `max_share`."),
        Check("unpriced_share", "gx", "share",
              "Share of rows without cost_usd (no reported cost, no matching price), at most `max_share`."),
        Check("usage_keys_unmapped", "sql", "files",
              "Landing files none of whose loaded rows has a token count or a cost while some row keeps a usage "
              "or cost key in `attributes` (a key containing one of `key_patterns`): an export whose usage the "
              "pipeline does not read, which would otherwise load as unpriced calls."),
        *_COMMON_TAIL,
    ],
    "product": [
        Check("required_keys_not_null", "gx", "rows",
              "message_id, event and timestamp are never NULL, and every row has user_id or anonymous_id."),
        Check("message_id_unique", "gx", "rows", "message_id is unique in the partition (rows sharing an id)."),
        Check("timestamps_in_window", "gx", "share",
              "Share of timestamps outside [dt - `days`, dt + 1 + `days`), at most `max_share`."),
        Check("unknown_request_share", "sql", "share",
              "Share of events with a request_id that names no inference of dt - `lookback_days` .. dt, at most "
              "`max_share`."),
        *_COMMON_TAIL,
    ],
}
assert set(CHECKS) == set(STREAMS)


def asset_key(stream: str) -> list[str]:
    return ["raw", f"{stream}_events"]


def asset_name(stream: str) -> str:
    """The asset as written in quality.check_results.asset (Dagster's user string)."""
    return "/".join(asset_key(stream))
