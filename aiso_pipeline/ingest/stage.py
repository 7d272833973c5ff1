"""Stage one landing file as records of JSON text (`_staged`, numbered by the view `_lines`), whatever its
container: JSON lines, a JSON document, Parquet or CSV, plain, gzip or zstd (ingest/landing.py tells which from the
bytes). Every source's parse then reads `_lines` (ingest/render.py), except a Parquet or CSV file read as a source
of flat names: its cells are staged as they are (`_cells`) and parsed from them (typed_lines), with no JSON round
trip. DuckDB-specific: the readers and their options.
"""
from __future__ import annotations

from pathlib import Path

import duckdb

from aiso_pipeline import warehouse
from aiso_pipeline.config import literal
from aiso_pipeline.ingest import render, sources
from aiso_pipeline.ingest.landing import CONTAINERS, Container, LandingFile
from aiso_pipeline.ingest.render import ident, q

# Parquet types with no zone: the instant in UTC (CONTRACT section 2), written with its Z so the parse reads it.
NAIVE_TIMESTAMPS = ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATETIME")


class NotData(Exception):
    """The file's content fits no reader of the stream (e.g. a text file that is not JSON and whose first line
    names none of the stream's keys): it is quarantined whole with this reason."""


MAX_FRAME = 16 * 1024 * 1024  # one decompressed frame: a line, bounded like every line (stage_jsonl.sql)


MAX_SEGMENTS = 100  # CSV: unclosed quotes after which the rest of the file is read again (each costs a pass)
# What the reader's rejects mean, as quarantine reasons (DuckDB's error_type of reject_errors).
REJECTS = {"INVALID ENCODING": "unparseable: not UTF-8 text",
           "LINE SIZE OVER MAXIMUM": "unparseable: line over 16 MiB",
           "TOO MANY COLUMNS": "unparseable: more fields than the CSV header",
           "MISSING COLUMNS": "unparseable: fewer fields than the CSV header",
           "UNQUOTED VALUE": "unparseable: unclosed quote"}


def stage(con: duckdb.DuckDBPyConnection, f: LandingFile, c: Container, stream: str, scratch: Path) -> None:
    """Every reader gets the file's literal path (config.literal): a name with [ ] * ? is that file, no pattern.
    Besides `_lines`, leaves `_staged_rejects` (line_number, reason, payload): lines the reader could not read,
    each to be quarantined on its own while the rest of the file loads."""
    con.execute("CREATE OR REPLACE TEMP TABLE _staged_rejects (line_number BIGINT, reason VARCHAR, payload VARCHAR)")
    if c.compression == "zstd_frames":
        plain = scratch / "frames.jsonl"
        _unframe(f.path, plain)
        try:
            _stage_lines(con, literal(plain), "none")
        finally:
            plain.unlink(missing_ok=True)
    elif c.format == "jsonl":
        _stage_lines(con, literal(f.path), c.compression)
    elif c.format in ("json", "json_array"):
        warehouse.run(con, "ingest/sql/stage_json.sql", path=literal(f.path), compression=c.compression,
                      json_format="array" if c.format == "json_array" else "unstructured")
    elif c.format == "parquet":
        _stage_parquet(con, literal(f.path))
    elif c.format == "csv":
        _stage_csv(con, f, c, stream, scratch)
    else:
        raise ValueError(c)


def _stage_lines(con, path: str, compression: str) -> None:
    warehouse.run(con, "ingest/sql/stage_jsonl.sql", path=path, compression=compression)
    rejects = _rejects(con, 0)
    con.execute("INSERT INTO _staged_rejects SELECT * FROM _segment_rejects")
    _number(con, [("_staged", 1, rejects)])


def _rejects(con, offset: int) -> list[tuple[int, str, str]]:
    """The reader's rejected lines as (line number + offset, reason, payload), one per line, also left in
    `_segment_rejects`."""
    reasons = " ".join(f"WHEN {q(k)} THEN {q(v)}" for k, v in REJECTS.items())
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _segment_rejects AS
                    SELECT line + ? AS line_number,
                           first(CASE error_type {reasons} ELSE 'unparseable: ' || lower(error_type) END
                                 ORDER BY column_idx) AS reason,
                           left(first(csv_line), 4096) AS payload
                    FROM _reject_errors GROUP BY line ORDER BY line""", [offset])
    return con.execute("SELECT line_number, reason, payload FROM _segment_rejects").fetchall()


def _number(con, segments: list[tuple[str, int, list]], view: str = "_lines", select=None) -> None:
    """`view` (line_number, then `select(s)`: the segment's columns read through the alias `s`; default its
    payload) over staged segments (table, its first line's number, the rejects among its lines). Rowid n of a
    segment is line first + n, moved past every rejected line before it (a reject is no row of the table)."""
    select = select or (lambda s: f"{s}.payload")
    views = []
    for i, (table, first, rejects) in enumerate(segments):
        lines = sorted(r[0] for r in rejects)
        if not lines:
            views.append(f"SELECT s.rowid + {first} AS line_number, {select('s')} FROM {table} AS s")
            continue
        # the i-th reject (1-based) at line r passes every row whose line without rejects, rowid + first, is past
        # r - i: the offset of a row is the largest i with r_i - i < rowid + first
        offsets = ", ".join(f"({r - (k + 1)}, {k + 1})" for k, r in enumerate(lines))
        views.append(f"""SELECT s.rowid + {first} + coalesce(o.n, 0) AS line_number, {select('s')}
                         FROM {table} AS s
                         ASOF LEFT JOIN (SELECT adj, max(n) AS n FROM (VALUES {offsets}) AS v(adj, n) GROUP BY adj) AS o
                           ON s.rowid + {first} > o.adj""")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS " + "\nUNION ALL\n".join(views))


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
    """The file's columns as they are (`_staged_cols`; in the view `_cells` as the struct `c`, numbered by the
    1-based row; a timestamp without a zone as text with a Z, NaN as absent), each row as a JSON object in the view
    `_lines` (nested structs stay nested), which the recognizer reads a few rows of. The parse then reads the
    columns (typed_lines) or, for a source that needs JSON text, the rows as JSON (json_lines)."""
    reader = "read_parquet(?, hive_partitioning = false)"  # no `dt` column from the dt= folder name
    columns = con.execute(f"DESCRIBE SELECT * FROM {reader}", [path]).fetchall()

    def column(name: str, kind: str) -> str:
        if kind in NAIVE_TIMESTAMPS:
            return f"strftime({ident(name)}, '%Y-%m-%dT%H:%M:%S.%fZ') AS {ident(name)}"
        if kind in ("DOUBLE", "FLOAT"):  # pandas writes a missing number as NaN: absent, not out of range
            return f"CASE WHEN isnan({ident(name)}) THEN NULL ELSE {ident(name)} END AS {ident(name)}"
        return ident(name)
    select = ", ".join(column(name, kind) for name, kind, *_ in columns)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _staged_cols AS SELECT {select} FROM {reader}", [path])
    _cells(con, [("_staged_cols", 1, [])], [name for name, *_ in columns], csv=False)


def _opens_json(x: str) -> str:
    """Whether a CSV cell (the expression x) opens with { or [: how exports write objects and lists."""
    return f"regexp_matches({x}, '^\\s*[\\[{{]')"


def _json_value(x: str, csv: bool) -> str:
    """A staged cell (the expression x) as the JSON value the row's JSON object holds: a Parquet value as itself; a
    CSV cell as a string, or as the JSON it holds when it opens with { or [."""
    if not csv:
        return x
    return f"CASE WHEN {_opens_json(x)} THEN coalesce(try(json({x})), to_json({x})) ELSE to_json({x}) END"


def _cells(con, segments: list[tuple[str, int, list]], names: list[str], csv: bool) -> None:
    """`_cells` (line_number, c: the row's cells as a struct, so no column name can clash with line_number) over
    the staged segments, and `_lines` over it: each row as a JSON object (computed where read: the recognizer's
    few rows, the quarantined rows' payloads, or every row for a source that takes the JSON parse)."""
    _number(con, segments, "_cells",
            lambda s: f"struct_pack({', '.join(f'{ident(n)} := {s}.{ident(n)}' for n in names)}) AS c")
    members = ", ".join(f"{ident(n)} := {_json_value('c.' + ident(n), csv)}" for n in names)
    con.execute(f"""CREATE OR REPLACE TEMP VIEW _lines AS
                    SELECT line_number, to_json(struct_pack({members}))::VARCHAR AS payload FROM _cells""")


def has_columns(c: Container) -> bool:
    """Whether stage() left the file's cells in `_cells` (typed_lines can read them)."""
    return c.format in ("parquet", "csv")


def typed_lines(con: duckdb.DuckDBPyConnection, source: sources.Source, c: Container) -> bool:
    """`_typed_lines` (line_number, v, attrs) over `_cells` for the source's typed parse (render.TypedRecords):
    `v` holds each name the source reads as the JSON parse would read it from the row's JSON object (a string as it
    is, any other value as its JSON text; a column the file lacks is NULL), `attrs` the columns it does not read
    whole, as a JSON object. False (nothing made) when the source reads a nested path or a wildcard: then
    json_lines() and the JSON parse."""
    if not render.typed_eligible(source):
        return False
    reader = render.TypedRecords(source)
    # the cells and their types, in order (a file's column may have any name: they are fields of the struct c)
    kinds = {name: kind for name, kind, *_ in con.execute("DESCRIBE SELECT c.* FROM _cells").fetchall()}
    csv = c.format == "csv"

    def text(name: str) -> str:
        x = "c." + ident(name)
        if name not in kinds:
            return "NULL::VARCHAR"
        if csv:  # what json_transform gives for the cell's JSON value: the JSON a cell holds is read minified
            return f"CASE WHEN {_opens_json(x)} THEN coalesce(try(json({x}))::VARCHAR, {x}) ELSE {x} END"
        if kinds[name] == "VARCHAR":
            return x
        # what json_transform gives for its JSON: a number or an object as its JSON text, a string (a timestamp
        # with a zone, a date, a UUID...) unquoted
        return f"json_extract_string(to_json({x}), '$')"
    v = ", ".join(f"{ident(name)} := {text(name)}" for name in reader.shape)
    whole = set(reader.read_whole())
    rest = [name for name in kinds if name not in whole]
    members = ", ".join(f"{ident(n)} := {_json_value('c.' + ident(n), csv)}" for n in rest)
    attrs = f"to_json(struct_pack({members}))" if rest else "NULL::JSON"
    con.execute(f"""CREATE OR REPLACE TEMP VIEW _typed_lines AS
                    SELECT line_number, struct_pack({v}) AS v, {attrs} AS attrs FROM _cells""")
    return True


def typed_payloads(con: duckdb.DuckDBPyConnection, source_file: str) -> None:
    """The JSON payload of the file's quarantined rows (a typed parse leaves it NULL for every row), made for those
    rows only."""
    con.execute("""UPDATE _parsed AS p SET payload = l.payload
                   FROM (SELECT line_number, payload FROM _lines
                         WHERE line_number IN (SELECT line_number FROM _parsed WHERE source_file = $file
                                               AND reason IS NOT NULL AND payload IS NULL)) AS l
                   WHERE p.source_file = $file AND p.reason IS NOT NULL AND p.payload IS NULL
                     AND p.line_number = l.line_number""", {"file": source_file})


def json_lines(con: duckdb.DuckDBPyConnection) -> None:
    """Every row of `_lines` as JSON text, once, for the JSON parse (which reads each several times)."""
    con.execute("CREATE OR REPLACE TEMP TABLE _staged_json AS SELECT line_number, payload FROM _lines")
    con.execute("CREATE OR REPLACE TEMP VIEW _lines AS SELECT line_number, payload FROM _staged_json")


def _stage_csv(con, f: LandingFile, c: Container, stream: str, scratch: Path) -> None:
    """The rows' cells as text (`_cells`, read by typed_lines), and each row as a JSON object of its cells
    (`_lines`); a cell holding a JSON object or array (how exports write `features`, `properties` or `metadata`) is
    nested as JSON, so paths into it work as for JSON lines. The header and delimiter come from the sniffed first
    line (landing.py), never from guessing over the rows, so a ragged row is that row's problem: a row with more or
    fewer fields than the header, or bad bytes, is quarantined on its own (the reader's rejects). An unclosed quote
    swallows the rest of the file into one field (RFC 4180 lets a quoted field span lines): its line is quarantined
    and the lines after it are read again. Line 1 is the header, so data rows start at line 2."""
    drop_segments(con)
    columns = list(dict.fromkeys(c.header))  # a repeated column name is read once
    if not set(columns) & sources.top_level_keys(stream):
        raise NotData(f"unsupported_format: not {CONTAINERS} with a header naming {stream} keys")
    schema = "{" + ", ".join(f"{q(col)}: 'VARCHAR'" for col in columns) + "}"
    segments, path, compression, first = [], literal(f.path), c.compression, 2
    for i in range(MAX_SEGMENTS):
        table = f"_staged_{i}" if i else "_staged"
        con.execute("DROP TABLE IF EXISTS _reject_errors")
        con.execute("DROP TABLE IF EXISTS _reject_scans")
        reader = (f"read_csv(?, header = true, auto_detect = false, columns = {schema}, delim = {q(c.delimiter)}, "
                  f"quote = '\"', escape = '\"', strict_mode = true, null_padding = false, "
                  f"max_line_size = 16777216, hive_partitioning = false, compression = {q(compression)}, "
                  f"store_rejects = true, rejects_table = '_reject_errors', rejects_scan = '_reject_scans')")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM {reader}", [path])
        rejects = _rejects(con, first - 2)
        segments.append((table, first, rejects))
        rest = con.execute("""SELECT min(line) FROM _reject_errors WHERE error_type = 'UNQUOTED VALUE'
                              AND contains(csv_line, chr(10))""").fetchone()[0]
        con.execute("INSERT INTO _staged_rejects SELECT line_number, reason, split_part(payload, chr(10), 1) "
                    "FROM _segment_rejects")
        if rest is None:
            break
        swallowed_at = rest + first - 2  # the unclosed quote's line in the file: read again from the next one
        remainder = scratch / "csv-rest.csv"
        _write_tail(f.path, c.compression, swallowed_at, c.header, c.delimiter, remainder)
        path, compression, first = literal(remainder), "none", swallowed_at + 1
    _cells(con, segments, columns, csv=True)


def _write_tail(source: Path, compression: str, after_line: int, header, delimiter: str, target: Path) -> None:
    """The file's lines after `after_line`, under the header again, as a plain CSV file."""
    import gzip
    import io

    target.parent.mkdir(parents=True, exist_ok=True)
    if compression == "gzip":
        raw = gzip.open(source, "rb")
    elif compression == "zstd":
        import zstandard
        raw = zstandard.ZstdDecompressor().stream_reader(open(source, "rb"))
    else:
        raw = open(source, "rb")
    with raw, open(target, "wb") as out:
        out.write((delimiter.join('"' + col.replace('"', '""') + '"' for col in header) + "\n").encode())
        for n, line in enumerate(io.BufferedReader(raw) if compression == "zstd" else raw, start=1):
            if n > after_line:
                out.write(line)


def drop_segments(con) -> None:
    """The extra staged segments of a CSV file (tables _staged_1, _staged_2, ...)."""
    for (name,) in con.execute("""SELECT table_name FROM duckdb_tables()
                                  WHERE temporary AND regexp_full_match(table_name, '_staged_[0-9]+')""").fetchall():
        con.execute(f"DROP TABLE IF EXISTS {ident(name)}")
