"""Turn simulated columns into landing files with DuckDB `COPY`: the SQL that names keys (canonical, OpenTelemetry
aliases, camelCase), formats ids and timestamps, and writes the planted faults, one `CASE` per faulty field."""
from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from .events import APP_VERSIONS, ERROR_TYPES, EVENTS, PATHS, STATUSES, TZ
from .world import EXPERIMENTS, FEATURES, LANGUAGES, MODEL_NAMES, MODELS, REGIONS, TIERS

FORMATS = ("jsonl", "jsonl.gz", "parquet", "csv")
JSON_FORMATS = ("jsonl", "jsonl.gz")

# Malformed rows each stream can get (each must be quarantined), and their codes in the `bad` column (0 = valid).
KINDS = {
    "inference": ("broken_json", "missing_request_id", "missing_model", "missing_timestamp", "bad_type",
                  "negative_tokens", "confidence_out_of_range", "sample_rate_zero", "cached_gt_input", "bad_status",
                  "bad_timestamp"),
    "product": ("broken_json", "missing_message_id", "missing_event", "missing_user", "bad_timestamp"),
}
F = {name: code for code, name in enumerate(dict.fromkeys([*KINDS["inference"], *KINDS["product"], "injection"]), 1)}
INJECTION = {"inference": "x'; DROP TABLE raw.inference_events; --", "product": "x'; DROP TABLE raw.product_events; --"}
JUNK_TIMESTAMP = "yesterday 25:61"

LABELS = {  # categorical column -> labels its codes index
    "model": MODEL_NAMES, "model_version": tuple(m.version for m in MODELS),
    "provider": tuple(m.provider for m in MODELS), "operation": tuple(m.operation for m in MODELS),
    "feature": tuple(f.name for f in FEATURES), "status": STATUSES, "error_type": ERROR_TYPES,
    "experiment": tuple(e.id for e in EXPERIMENTS), "variant_name": tuple(v for e in EXPERIMENTS for v in e.variants),
    "language": LANGUAGES, "user_tier": TIERS, "region": REGIONS, "app_version": APP_VERSIONS, "tz": TZ,
    "event": EVENTS, "path": PATHS,
}


NULLABLE_INTS = ("user", "cached_input_tokens")


def to_arrow(cols: dict[str, np.ndarray]) -> pa.Table:
    """Codes become dictionary strings; -1 codes or nullable ints, NaN floats and 0 ids become nulls."""
    cols = dict(cols)
    if "model" in cols:  # columns derived from codes: no copy, just other labels
        cols.update(model_version=cols["model"], provider=cols["model"], operation=cols["model"],
                    variant_name=cols["experiment"] * 2 + cols["variant"])
    arrays = {}
    for name, v in cols.items():
        if name in LABELS:
            codes = pa.array(v.astype(np.int32), mask=v < 0)
            arrays[name] = pa.DictionaryArray.from_arrays(codes, pa.array(LABELS[name]))
        elif v.dtype == np.uint64:
            arrays[name] = pa.array(v, mask=v == 0)
        elif v.dtype.kind == "f":
            arrays[name] = pa.array(v, mask=np.isnan(v))
        elif name in NULLABLE_INTS:
            arrays[name] = pa.array(v, mask=v < 0)
        else:
            arrays[name] = pa.array(v)
    return pa.table(arrays)


def _timestamp(fmt: str, missing: str | None = None) -> str:
    """ISO-8601 with Z or an offset; epoch ms in some rows of text formats (parquet keeps ISO)."""
    iso = "strftime(make_timestamp((ts + tz_min * 60000) * 1000), '%Y-%m-%dT%H:%M:%S.%g') || tz"
    if fmt in JSON_FORMATS:  # a JSON value: epoch ms is a number, not a string
        junk, epoch, iso = f"to_json('{JUNK_TIMESTAMP}')", "to_json(ts)", f"to_json({iso})"
    else:
        junk, epoch = f"'{JUNK_TIMESTAMP}'", ("ts::VARCHAR" if fmt == "csv" else iso)
    drop = f"WHEN bad = {F[missing]} THEN NULL " if missing else ""
    return f"CASE WHEN bad = {F['bad_timestamp']} THEN {junk} {drop}WHEN epoch_ms THEN {epoch} ELSE {iso} END"


def _nested(fmt: str, struct: str) -> str:
    """Objects stay nested in JSON and parquet (a struct); CSV gets a JSON string without null members."""
    return f"json_merge_patch('{{}}', to_json({struct}))::VARCHAR" if fmt == "csv" else struct


def _id(stream: str, value: str, missing: str) -> str:
    injection = INJECTION[stream].replace("'", "''")
    return f"CASE bad WHEN {F[missing]} THEN NULL WHEN {F['injection']} THEN '{injection}' ELSE {value} END"


USER_ID = "printf('user_%06d', \"user\")"
SESSION_ID = "printf('sess_%016x', session)"
REQUEST_ID = "printf('req_%016x', rid)"


def inference_select(fmt: str, alias: bool) -> list[tuple[str, str]]:
    """(key, SQL) per written key; `alias` uses the OpenTelemetry GenAI names (and latency in seconds)."""
    if fmt == "parquet":
        tokens_in = "input_tokens"  # a typed column cannot hold "abc"
    elif fmt == "csv":
        tokens_in = f"CASE WHEN bad = {F['bad_type']} THEN 'abc' ELSE input_tokens::VARCHAR END"
    else:
        tokens_in = f"CASE WHEN bad = {F['bad_type']} THEN to_json('abc') ELSE to_json(input_tokens) END"
    features = "{'prompt_chars': prompt_chars, 'language': language, 'retrieved_docs': retrieved_docs, " \
               "'user_tier': user_tier}"
    keys = [
        ("request_id", "gen_ai.response.id", _id("inference", REQUEST_ID, "missing_request_id")),
        ("timestamp", "start_time", _timestamp(fmt, "missing_timestamp")),
        ("model", "gen_ai.request.model", f"CASE WHEN bad = {F['missing_model']} THEN NULL ELSE model END"),
        ("model_version", "gen_ai.response.model", "model_version"),
        ("provider", "gen_ai.provider.name", "provider"),
        ("operation", "gen_ai.operation.name", "operation"),
        ("feature", "channel", "feature"),
        ("user_id", "user.id", USER_ID),
        ("session_id", "session.id", SESSION_ID),
        ("input_tokens", "gen_ai.usage.input_tokens", tokens_in),
        ("output_tokens", "gen_ai.usage.output_tokens",
         f"CASE WHEN bad = {F['negative_tokens']} THEN -output_tokens - 1 ELSE output_tokens END"),
        ("cached_input_tokens", "gen_ai.usage.cache_read.input_tokens",
         f"CASE WHEN bad = {F['cached_gt_input']} THEN input_tokens + 100 ELSE cached_input_tokens END"),
        ("latency_ms", "latency_s", "round(latency_ms / 1000, 4)" if alias else "latency_ms"),
        ("status", "status", f"CASE WHEN bad = {F['bad_status']} THEN 'weird' ELSE status END"),
        ("error_type", "error.type", "error_type"),
        ("is_fallback", "is_fallback", "is_fallback"),
        ("confidence", "confidence", f"CASE WHEN bad = {F['confidence_out_of_range']} THEN 1.7 ELSE confidence END"),
        ("cost_usd", "cost_usd", "cost_usd"),
        ("experiment_id", "experiment_id", "experiment"),
        ("variant", "variant", "variant_name"),
        ("sample_rate", "sample_rate", f"CASE WHEN bad = {F['sample_rate_zero']} THEN 0.0 ELSE sample_rate END"),
        ("features", "features", _nested(fmt, features)),
        ("region", "region", "region"),  # keys the contract does not name: kept in `attributes`
        ("app_version", "app_version", "app_version"),
    ]
    return [(a if alias else k, sql) for k, a, sql in keys]


def product_select(fmt: str, camel: bool, request_in_properties: bool) -> list[tuple[str, str]]:
    """(key, SQL) per written key; `camel` uses Segment's camelCase names."""
    def key(snake: str) -> str:
        return "".join(w.capitalize() if i else w for i, w in enumerate(snake.split("_"))) if camel else snake

    no_user = f"bad = {F['missing_user']}"
    props = ("{'revenue': revenue, 'currency': CASE WHEN revenue IS NOT NULL THEN 'USD' END, 'path': path"
             + (f", 'request_id': {REQUEST_ID}" if request_in_properties else "") + "}")
    return [
        (key("message_id"), _id("product", "printf('ajs-%016x', mid)", "missing_message_id")),
        ("event", f"CASE WHEN bad = {F['missing_event']} THEN NULL ELSE event END"),
        ("timestamp", _timestamp(fmt)),
        (key("user_id"), f"CASE WHEN {no_user} THEN NULL ELSE {USER_ID} END"),
        (key("anonymous_id"), f"CASE WHEN {no_user} THEN NULL ELSE printf('anon_%016x', anon) END"),
        (key("session_id"), SESSION_ID),
        *([] if request_in_properties else [("request_id", REQUEST_ID)]),
        ("properties", _nested(fmt, props)),
        *([("type", "'track'")] if camel else []),  # Segment's envelope key: unknown to the contract
    ]


def write(con: duckdb.DuckDBPyConnection, table: pa.Table, select: list[tuple[str, str]], fmt: str,
          path: Path) -> None:
    """One COPY; row order is kept, and DuckDB's output (gzip mtime 0 included) is the same on every run."""
    con.register("part", table)
    if fmt in JSON_FORMATS:
        # json_merge_patch drops null members, so absent values are absent keys, as exporters write them.
        obj = "json_merge_patch('{}', json_object(" + ", ".join(f"'{k}', {sql}" for k, sql in select) + "))::VARCHAR"
        sql = (f"SELECT CASE WHEN bad = {F['broken_json']} THEN left(line, length(line) // 2) ELSE line END "
               f"FROM (SELECT {obj} AS line, bad FROM part)")
        # One text column, unquoted: the CSV writer then writes each JSON document as one line.
        options = "FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x1e'" + (
            ", COMPRESSION gzip" if fmt == "jsonl.gz" else "")
    else:
        sql = "SELECT " + ", ".join(f'{sql} AS "{k}"' for k, sql in select) + " FROM part"
        options = "FORMAT parquet, COMPRESSION zstd" if fmt == "parquet" else "FORMAT csv, HEADER true"
    target = str(path).replace("'", "''")
    con.execute(f"COPY ({sql}) TO '{target}' ({options})")
    con.unregister("part")
