"""Stage one landing file as records of JSON text (`_staged`, numbered by the view `_lines`), whatever its
container: JSON lines, a JSON document, Parquet or CSV, plain, gzip or zstd (ingest/landing.py tells which from the
bytes). Every source's parse then reads `_lines` (ingest/render.py). DuckDB-specific: the readers and their options.
"""
from __future__ import annotations

from pathlib import Path

import duckdb

from aiso_pipeline import warehouse
from aiso_pipeline.config import literal
from aiso_pipeline.ingest import sources
from aiso_pipeline.ingest.landing import CONTAINERS, Container, LandingFile
from aiso_pipeline.ingest.render import ident

# Parquet types with no zone: the instant in UTC (CONTRACT section 2), written with its Z so the parse reads it.
NAIVE_TIMESTAMPS = ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATETIME")


class NotData(Exception):
    """The file's content fits no reader of the stream (e.g. a text file that is not JSON and whose first line
    names none of the stream's keys): it is quarantined whole with this reason."""


MAX_FRAME = 16 * 1024 * 1024  # one decompressed frame: a line, bounded like every line (stage_jsonl.sql)


def stage(con: duckdb.DuckDBPyConnection, f: LandingFile, c: Container, stream: str, scratch: Path) -> None:
    """Every reader gets the file's literal path (config.literal): a name with [ ] * ? is that file, no pattern."""
    if c.compression == "zstd_frames":
        plain = scratch / "frames.jsonl"
        _unframe(f.path, plain)
        try:
            warehouse.run(con, "ingest/sql/stage_jsonl.sql", path=literal(plain), compression="none")
        finally:
            plain.unlink(missing_ok=True)
    elif c.format == "jsonl":
        warehouse.run(con, "ingest/sql/stage_jsonl.sql", path=literal(f.path), compression=c.compression)
    elif c.format in ("json", "json_array"):
        warehouse.run(con, "ingest/sql/stage_json.sql", path=literal(f.path), compression=c.compression,
                      json_format="array" if c.format == "json_array" else "unstructured")
    elif c.format == "parquet":
        _stage_parquet(con, literal(f.path))
    elif c.format == "csv":
        _stage_csv(con, literal(f.path), c.compression, stream)
    else:
        raise ValueError(c)


def _unframe(source: Path, target: Path) -> None:
    """Length-prefixed zstd frames -> JSON lines (a frame per line, so line n is frame n)."""
    import struct

    import zstandard
    target.parent.mkdir(parents=True, exist_ok=True)
    decompressor = zstandard.ZstdDecompressor()
    with open(source, "rb") as src, open(target, "wb") as out:
        while header := src.read(4):
            if len(header) < 4:
                raise NotData("unreadable_file: a zstd frame's length is cut short")
            (size,) = struct.unpack(">I", header)
            frame = src.read(size)
            if len(frame) < size:
                raise NotData("unreadable_file: the last zstd frame is cut short")
            try:
                text = decompressor.decompress(frame, max_output_size=MAX_FRAME)
            except zstandard.ZstdError as e:
                raise NotData(f"unreadable_file: a zstd frame does not decompress ({e})") from None
            out.write(text.replace(b"\n", b" ").rstrip() + b"\n")


def _stage_parquet(con, path: str) -> None:
    """Each row as a JSON object (nested structs stay nested); line_number is the 1-based row."""
    reader = "read_parquet(?, hive_partitioning = false)"  # no `dt` column from the dt= folder name
    columns = con.execute(f"DESCRIBE SELECT * FROM {reader}", [path]).fetchall()

    def column(name: str, kind: str) -> str:
        if kind in NAIVE_TIMESTAMPS:
            return f"strftime({ident(name)}, '%Y-%m-%dT%H:%M:%S.%fZ') AS {ident(name)}"
        if kind in ("DOUBLE", "FLOAT"):  # pandas writes a missing number as NaN: absent, not out of range
            return f"CASE WHEN isnan({ident(name)}) THEN NULL ELSE {ident(name)} END AS {ident(name)}"
        return ident(name)
    select = ", ".join(column(name, kind) for name, kind, *_ in columns)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _staged AS
                    SELECT to_json(t)::VARCHAR AS payload FROM (SELECT {select} FROM {reader}) AS t""", [path])
    con.execute("CREATE OR REPLACE TEMP VIEW _lines AS SELECT rowid + 1 AS line_number, payload FROM _staged")


def _stage_csv(con, path: str, compression: str, stream: str) -> None:
    """Each row as a JSON object of its cells, as text; a cell holding a JSON object or array (how exports write
    `features`, `properties` or `metadata`) is nested as JSON, so paths into it work as for JSON lines. Quote and
    escape are fixed (RFC 4180): auto-detection with strict_mode off can otherwise guess no escape and miss the
    header. Line 1 is the header, so data rows start at line 2."""
    reader = (f"read_csv(?, header = true, all_varchar = true, auto_detect = true, quote = '\"', escape = '\"', "
              f"strict_mode = false, max_line_size = 16777216, hive_partitioning = false, "
              f"compression = '{compression}')")
    columns = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {reader}", [path]).fetchall()]
    if not set(columns) & sources.top_level_keys(stream):
        raise NotData(f"unsupported_format: not {CONTAINERS} with a header naming {stream} keys")
    cells = ", ".join(
        f"CASE WHEN regexp_matches({ident(c)}, '^\\s*[\\[{{]') THEN coalesce(try(json({ident(c)})), to_json({ident(c)})) "
        f"ELSE to_json({ident(c)}) END AS {ident(c)}" for c in columns)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _staged AS
                    SELECT to_json(t)::VARCHAR AS payload FROM (SELECT {cells} FROM {reader}) AS t""", [path])
    con.execute("CREATE OR REPLACE TEMP VIEW _lines AS SELECT rowid + 2 AS line_number, payload FROM _staged")
