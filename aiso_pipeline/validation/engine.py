"""Validate one raw partition (stream x day): GX suite + SQL metrics -> outcomes, quality.check_results, report.

`validate_partition` is what the Dagster checks call. It imports Great Expectations on first use (seconds), so
importing this module stays cheap.
"""
from __future__ import annotations

import datetime as dt_
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from aiso_pipeline import warehouse
from aiso_pipeline.config import DataDir
from aiso_pipeline.errors import AisoError
from aiso_pipeline.validation import config as validation_config
from aiso_pipeline.validation.checks import CHECKS, asset_name


@dataclass
class CheckOutcome:
    check_name: str
    passed: bool
    severity: str  # ERROR | WARN
    observed_value: float | None
    threshold: str
    details: dict[str, Any] = field(default_factory=dict)
    examples: list[dict] = field(default_factory=list)


def parse_day(dt: str) -> dt_.date:
    try:
        return dt_.date.fromisoformat(dt)
    except (TypeError, ValueError) as e:
        raise AisoError(f"partition {dt!r} is not a day YYYY-MM-DD: run the checks for a daily partition") from e


def report_path(data: DataDir, stream: str, dt: str) -> Path:
    return data.reports / "validation" / stream / f"dt={dt}.json"


def validate_partition(con: duckdb.DuckDBPyConnection, data: DataDir, stream: str, dt: str,
                       cfg: dict | None = None) -> list[CheckOutcome]:
    """Run every check of `stream` on partition `dt`; record them; return them in CHECKS order."""
    from aiso_pipeline.validation.suites import run_suite  # imports great_expectations

    day = parse_day(dt)
    cfg = cfg or validation_config.load(data)
    suite_run = run_suite(con, stream, day, cfg)
    outcomes = {o.check_name: o for o in gx_outcomes(stream, suite_run, cfg)}
    outcomes.update({o.check_name: o for o in sql_outcomes(con, stream, dt, cfg)})
    ordered = [outcomes[c.name] for c in CHECKS[stream]]
    write_results(con, stream, dt, ordered)
    write_report(report_path(data, stream, dt), stream, dt, suite_run.result, ordered)
    return ordered


# --- GX checks -------------------------------------------------------------------------------------------------

def _raised(evr) -> str | None:
    info = evr.exception_info or {}
    if info.get("raised_exception"):
        return info.get("exception_message") or "exception"
    for value in info.values():  # some GX paths key exception info by metric
        if isinstance(value, dict) and value.get("raised_exception"):
            return value.get("exception_message") or "exception"
    return None


def _describe(evr) -> dict[str, Any]:
    cfg = evr.expectation_config
    kwargs = {k: v for k, v in cfg.kwargs.items() if k not in ("batch_id", "result_format")}
    r = evr.result or {}
    out = {"expectation": cfg.type, **{k: _jsonable(v) for k, v in kwargs.items()},
           "success": bool(evr.success), "element_count": r.get("element_count"),
           "unexpected_count": r.get("unexpected_count"), "unexpected_percent": r.get("unexpected_percent")}
    if (error := _raised(evr)) is not None:
        out["error"] = error
    return out


def gx_outcomes(stream: str, suite_run, cfg: dict) -> list[CheckOutcome]:
    by_check: dict[str, list[int]] = {}
    for i, evr in enumerate(suite_run.result.results):
        by_check.setdefault(evr.expectation_config.meta["check"], []).append(i)
    outcomes = []
    for check in CHECKS[stream]:
        if check.kind != "gx":
            continue
        settings = cfg[stream][check.name]
        indexes = by_check[check.name]
        evrs = [suite_run.result.results[i] for i in indexes]
        described = [_describe(e) for e in evrs]
        errors = [d["error"] for d in described if "error" in d]
        unexpected = sum(d["unexpected_count"] or 0 for d in described)
        examples = [dict(ex, column=d.get("column") or d.get("column_A"))
                    for i, d in zip(indexes, described) for ex in suite_run.examples.get(i, [])]
        if check.observed == "share":
            percent = described[0]["unexpected_percent"]
            observed = None if percent is None else percent / 100
            threshold = f"<= {settings['max_share']:g}"
        else:
            observed, threshold = float(unexpected), "0 rows"
        details: dict[str, Any] = {"expectations": described}
        if errors:
            details["errors"] = errors
        outcomes.append(CheckOutcome(
            check_name=check.name, passed=all(e.success for e in evrs) and not errors,
            severity=settings["severity"], observed_value=observed, threshold=threshold, details=details,
            examples=[_jsonable(e) for e in examples[: cfg["examples"]]]))
    return outcomes


# --- SQL checks ------------------------------------------------------------------------------------------------

def metrics(con: duckdb.DuckDBPyConnection, stream: str, dt: str, cfg: dict) -> dict[str, Any]:
    c = cfg[stream]
    params = {"dt": dt, "history_days": int(c["volume"]["history_days"])}
    if stream == "product":
        params["lookback_days"] = int(c["unknown_request_share"]["lookback_days"])
    else:  # a bound parameter, never SQL text
        params["usage_pattern"] = "|".join(f"(?:{p})" for p in c["usage_keys_unmapped"]["key_patterns"])
    rel = warehouse.run(con, f"validation/sql/{stream}_metrics.sql", **params)
    names = [d[0] for d in rel.description]
    return dict(zip(names, rel.fetchone()))


def _rows(con, name: str, **params) -> list[dict]:
    rel = warehouse.run(con, f"validation/sql/{name}.sql", **params)
    names = [d[0] for d in rel.description]
    return [dict(zip(names, row)) for row in rel.fetchall()]


def sql_outcomes(con: duckdb.DuckDBPyConnection, stream: str, dt: str, cfg: dict) -> list[CheckOutcome]:
    c, n = cfg[stream], cfg["examples"]
    m = metrics(con, stream, dt, cfg)
    out = []

    s = c["quarantine_share"]
    share = m["rows_quarantined"] / m["rows_read"] if m["rows_read"] else 0.0
    passed = share <= s["max_share"]
    out.append(CheckOutcome(
        "quarantine_share", passed, s["severity"], share, f"<= {s['max_share']:g}",
        {"rows_read": m["rows_read"], "rows_quarantined": m["rows_quarantined"]},
        [] if passed or not n else _rows(con, "quarantine_examples", stream=stream, dt=dt, n=n)))

    s = c["files_quarantined"]
    passed = m["files_quarantined"] <= s["max_files"]
    out.append(CheckOutcome(
        "files_quarantined", passed, s["severity"], float(m["files_quarantined"]), f"<= {s['max_files']:g}",
        {"files": m["files"], "files_quarantined": m["files_quarantined"]},
        [] if passed or not n else _rows(con, "files_quarantined_examples", stream=stream, dt=dt, n=n)))

    s = c["volume"]
    history = [dict(h) for h in m["history"]]
    details = {"rows_loaded": m["rows_loaded"], "median_rows": m["median_rows"],
               "history_days": m["history_days"], "history": history}
    if m["history_days"] < s["min_history_days"] or not m["median_rows"]:
        observed, passed = None, True
        details["note"] = (f"{m['history_days']} of the trailing {s['history_days']:g} days have rows; "
                           f"at least {s['min_history_days']:g} needed to judge volume")
    else:
        observed = m["rows_loaded"] / float(m["median_rows"])
        passed = s["min_ratio"] <= observed <= s["max_ratio"]
    out.append(CheckOutcome(
        "volume", passed, s["severity"], observed,
        f"[{s['min_ratio']:g}, {s['max_ratio']:g}] x median of trailing {s['history_days']:g} days", details))

    s = c["freshness"]
    passed = m["files"] >= s["min_files"]
    details = {"files": m["files"], "landing": f"landing/{stream}/dt={dt}/"}
    out.append(CheckOutcome("freshness", passed, s["severity"], float(m["files"]), f">= {s['min_files']:g}",
                            details))

    if stream == "inference":
        s = c["usage_keys_unmapped"]
        passed = m["files_usage_unmapped"] <= s["max_files"]
        out.append(CheckOutcome(
            "usage_keys_unmapped", passed, s["severity"], float(m["files_usage_unmapped"]), f"<= {s['max_files']:g}",
            {"files": list(m["usage_unmapped_files"]), "key_patterns": s["key_patterns"],
             "fix": "map the export's token and cost keys (ingest/sources/) or report it as an unsupported source"},
            [{"source_file": f} for f in m["usage_unmapped_files"][:n]]))

    if stream == "product":
        s = c["unknown_request_share"]
        with_id, unknown = m["with_request_id"], m["unknown_request_id"]
        share = unknown / with_id if with_id else 0.0
        passed = share <= s["max_share"]
        out.append(CheckOutcome(
            "unknown_request_share", passed, s["severity"], share, f"<= {s['max_share']:g}",
            {"events_with_request_id": with_id, "unknown_request_id": unknown,
             "lookback_days": s["lookback_days"]},
            [] if passed or not n else _rows(con, "unknown_request_examples", dt=dt, n=n,
                                             lookback_days=int(s["lookback_days"]))))
    return out


# --- Recording -------------------------------------------------------------------------------------------------

def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (dt_.datetime, dt_.date)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item"):  # numpy / decimal-like scalars
        try:
            return value.item()
        except Exception:  # noqa: BLE001 - fall back to text
            pass
    return str(value)


def outcome_dict(o: CheckOutcome) -> dict[str, Any]:
    return _jsonable(asdict(o))


def write_results(con: duckdb.DuckDBPyConnection, stream: str, dt: str, outcomes: list[CheckOutcome]) -> None:
    """Replace this stream's checks of partition `dt` in quality.check_results, in one transaction."""
    con.execute("""CREATE OR REPLACE TEMP TABLE _check_results (check_name VARCHAR, passed BOOLEAN,
                   severity VARCHAR, observed_value DOUBLE, threshold VARCHAR, details VARCHAR)""")
    con.executemany("INSERT INTO _check_results VALUES (?, ?, ?, ?, ?, ?)", [
        (o.check_name, o.passed, o.severity, o.observed_value, o.threshold,
         json.dumps(_jsonable({**o.details, "examples": o.examples}))) for o in outcomes])
    try:
        with warehouse.transaction(con, writes=[("quality.check_results", dt)]):
            warehouse.run(con, "validation/sql/write_results.sql", dt=dt, asset=asset_name(stream))
    finally:
        con.execute("DROP TABLE IF EXISTS _check_results")


def write_report(path: Path, stream: str, dt: str, gx_result, outcomes: list[CheckOutcome]) -> None:
    """GX's validation result as JSON, with every check's outcome (GX and SQL) under meta.aiso_checks."""
    report = gx_result.to_json_dict()
    report.setdefault("meta", {})["aiso_checks"] = [outcome_dict(o) for o in outcomes]
    report["meta"]["aiso_partition"] = {"stream": stream, "dt": dt, "asset": asset_name(stream)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(_jsonable(report), indent=2))
    os.replace(tmp, path)
