"""The price table (CONTRACT section 4): validated, then loaded into a temp table `_prices` for pricing SQL."""
from __future__ import annotations

import logging
import math
import re
import shutil
from datetime import date

import duckdb

from aiso_pipeline.config import DEFAULT_PRICES, DataDir, literal
from aiso_pipeline.errors import AisoError

COLUMNS = ["model_pattern", "valid_from", "input_per_mtok", "output_per_mtok", "cached_input_per_mtok"]
MAX_PRICE = 10_000.0  # dollars per million tokens; list prices are below 1,000
log = logging.getLogger(__name__)


def ensure_prices(data: DataDir) -> None:
    """Copy the shipped default price table into the data directory when there is none (CONTRACT section 1)."""
    if not data.prices.exists():
        data.prices.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DEFAULT_PRICES, data.prices)
        log.info("no price table at %s: copied the default", data.prices)


def read_prices(path) -> list[dict]:
    """Rows of a price table, validated; an AisoError names the first bad line and how to fix it."""
    if not path.exists():
        raise AisoError(f"price table {path} does not exist: restore it or delete reference/ to get the default")
    try:
        rows = duckdb.read_csv(literal(path), header=True, all_varchar=True).fetchall()
        header = duckdb.read_csv(literal(path), header=True, all_varchar=True).columns
    except duckdb.Error as e:
        raise AisoError(f"price table {path} cannot be read: {str(e).splitlines()[0]}") from e
    missing = [c for c in COLUMNS[:4] if c not in header]
    if missing:
        raise AisoError(f"price table {path} lacks column(s) {', '.join(missing)}: its header must be {','.join(COLUMNS)}")
    out = []
    for line, values in enumerate(rows, start=2):
        row = dict(zip(header, values))

        def bad(what: str) -> AisoError:
            return AisoError(f"price table {path}, line {line}: {what}; fix the line and rerun")

        pattern = (row["model_pattern"] or "").strip()
        try:
            re.compile(pattern)
        except re.error as e:
            raise bad(f"model_pattern {pattern!r} is not a regular expression ({e})")
        if not pattern:
            raise bad("model_pattern is empty")
        try:
            valid_from = date.fromisoformat((row["valid_from"] or "").strip())
        except ValueError:
            raise bad(f"valid_from {row['valid_from']!r} is not a date YYYY-MM-DD")
        prices = {}
        for col in COLUMNS[2:]:
            raw = (row.get(col) or "").strip()
            if col == "cached_input_per_mtok" and not raw:
                prices[col] = None
                continue
            try:
                prices[col] = float(raw)
            except ValueError:
                raise bad(f"{col} {raw!r} is not a number")
            if math.isnan(prices[col]):
                raise bad(f"{col} {raw!r} is not a number")
            if prices[col] < 0:
                raise bad(f"{col} {raw!r} is negative")
            if prices[col] > MAX_PRICE:  # inf included: a cost must stay a finite number of dollars
                raise bad(f"{col} {raw!r} is above {MAX_PRICE:,.0f} dollars per million tokens (is the unit "
                          f"per million tokens?)")
        out.append({"row_number": line, "model_pattern": pattern, "valid_from": valid_from, **prices})
    return out


# What gateways and SDKs put around a model name that the price table's patterns do not: a dated or versioned
# snapshot suffix, and a cloud vendor's prefix (Bedrock's "anthropic.", cross-region "us.anthropic.").
_SNAPSHOT = re.compile(r"(-\d{4}-\d{2}-\d{2}|-\d{8}|@\d{8}|@\d{4}-\d{2}-\d{2}|@latest|-v\d+(:\d+)?)$")
_VENDOR = re.compile(r"^((us|eu|apac|global)\.)?(anthropic|meta|amazon|mistral|cohere|ai21|deepseek|qwen|openai|"
                     r"writer|google)\.")


def price_candidates(model: str) -> list[str]:
    """Names to look up in the price table for `model`, best first: the model as the source wrote it, then without
    provider prefixes one '/' segment at a time (`openai/`, `azure/`, `bedrock/`, `vertex_ai/`,
    `openrouter/openai/`; a pattern may itself hold a '/', e.g. `meta-llama/...`, so every tail is tried), each
    also without a vendor prefix and without a snapshot suffix (`-2024-07-18`, `-20241022`, `@20240620`,
    `-v1:0`). The first candidate some pattern matches prices the call; `model` itself is never changed."""
    parts = model.split("/")
    out: list[str] = []
    for i in range(len(parts)):
        tail = "/".join(parts[i:])
        for name in (tail, _VENDOR.sub("", tail)):
            for candidate in (name, _SNAPSHOT.sub("", name), _SNAPSHOT.sub("", _SNAPSHOT.sub("", name))):
                if candidate and candidate not in out:
                    out.append(candidate)
    return out


def load_model_candidates(con: duckdb.DuckDBPyConnection) -> None:
    """Temp table `_model_candidates` (model, candidate, rank) for the valid models of the batch (`_parsed`)."""
    models = [m for (m,) in con.execute(
        "SELECT DISTINCT model FROM _parsed WHERE reason IS NULL AND skip_reason IS NULL AND model IS NOT NULL"
    ).fetchall()]
    con.execute("CREATE OR REPLACE TEMP TABLE _model_candidates (model VARCHAR, candidate VARCHAR, rank INTEGER)")
    rows = [(m, c, i) for m in models for i, c in enumerate(price_candidates(m))]
    if rows:
        con.executemany("INSERT INTO _model_candidates VALUES (?, ?, ?)", rows)


def load_prices(con: duckdb.DuckDBPyConnection, data: DataDir) -> int:
    """Create temp table `_prices` from the data directory's price table. Returns its row count."""
    ensure_prices(data)
    rows = read_prices(data.prices)
    con.execute("""CREATE OR REPLACE TEMP TABLE _prices (row_number INTEGER, model_pattern VARCHAR,
                   valid_from TIMESTAMPTZ, input_per_mtok DOUBLE, output_per_mtok DOUBLE, cached_input_per_mtok DOUBLE)""")
    import pyarrow as pa  # one columnar insert: a row-by-row executemany took minutes for 50k rows
    table = pa.table({  # noqa: F841 - read by the INSERT below (DuckDB's replacement scan)
        "row_number": [r["row_number"] for r in rows], "model_pattern": [r["model_pattern"] for r in rows],
        "valid_from": [r["valid_from"] for r in rows], "input_per_mtok": [r["input_per_mtok"] for r in rows],
        "output_per_mtok": [r["output_per_mtok"] for r in rows],
        "cached_input_per_mtok": [r["cached_input_per_mtok"] if r["cached_input_per_mtok"] is not None
                                  else r["input_per_mtok"] for r in rows]})
    con.register("_prices_arrow", table)
    try:
        con.execute("INSERT INTO _prices SELECT * FROM _prices_arrow")
    finally:
        con.unregister("_prices_arrow")
    try:  # DuckDB's regex engine (RE2) rejects some Python-valid patterns, e.g. look-arounds
        con.execute("SELECT count(*) FROM _prices WHERE regexp_full_match('', model_pattern)").fetchone()
    except duckdb.Error as e:
        raise AisoError(f"price table {data.prices}: a model_pattern is not valid RE2 syntax "
                        f"({str(e).splitlines()[0]}); avoid look-arounds and backreferences") from e
    return len(rows)
