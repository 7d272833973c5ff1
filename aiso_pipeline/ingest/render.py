"""Render the parse SQL of every source from the declarations (ingest/sources/): one renderer, no per-source SQL.

For each source, a table macro `_rows_<source>(source_file)` reads the staged file (`_lines`: line_number, payload)
and returns one row per record with the same columns for every source of a stream (RowShape): where it came from,
its dedup key, `reason` (NULL for a good row, else every problem of the row, '; '-separated), `skip_reason` (NULL
unless the record is not one to load, e.g. an HTTP span or a Segment `identify` call), the typed canonical columns
and `attributes` (whatever the declaration does not map). Typing and the quarantine rules come from fields.yaml,
the same for every source.

Engine-specific expressions are the methods of `DuckDBDialect`; a second engine implements the same methods (and
its record readers) instead of transpiling SQL.
"""
from __future__ import annotations

import json
from functools import cache

from aiso_pipeline.ingest.sources import Condition, Field, Path_, Source, Stream, for_stream, sources, streams

# OTLP span fields a declaration may name (besides attributes/<name> and resource/attributes/<name>): the
# ExportTraceServiceRequest span, its scope, its status (opentelemetry-proto, JSON encoding).
OTLP_SPAN_FIELDS = ("traceId", "spanId", "parentSpanId", "name", "kind", "startTimeUnixNano", "endTimeUnixNano",
                    "status/code", "status/message", "scope/name", "scope/version")
RECOGNIZE_SAMPLE = 20  # records read from the head of a file to recognize its source

SQL_TYPES = {"string": "VARCHAR", "integer": "BIGINT", "number": "DOUBLE", "boolean": "BOOLEAN", "enum": "VARCHAR",
             "timestamp": "TIMESTAMPTZ", "object": "JSON", "scalar_object": "JSON"}


def _literal(value) -> str:
    """A declared default as SQL."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return q(str(value))


def q(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class DuckDBDialect:
    """The engine-specific expressions the renderer needs."""

    @staticmethod
    def json_path(keys: tuple[str, ...]) -> str:
        out = "$"
        for k in keys:
            out += "[*]" if k == "*" else "." + json.dumps(k)
        return out

    @staticmethod
    def try_double(x: str) -> str:
        return f"try_cast({x} AS DOUBLE)"

    @staticmethod
    def concat_reasons(parts: list[str]) -> str:
        return f"nullif(concat_ws('; ', {', '.join(parts)}), '')" if parts else "NULL"


D = DuckDBDialect


# --- record readers: how a path of a declaration becomes an expression on one record -------------------------

class JsonRecords:
    """One JSON object per line (JSON lines; Parquet and CSV rows as JSON when their source reads a nested path or a
    wildcard, else TypedRecords). Every path the source reads is extracted in one pass (json_transform into a
    struct of text values: objects and arrays as JSON text); a path into a key that is also read whole, or through
    an array (`*`), is read from that text or the line again."""

    def __init__(self, source: Source):
        self.source = source
        paths = source.key_paths()
        self.index = {k: i for i, k in enumerate(k for k in paths if "*" not in k)}  # kept for attributes_sql
        self.wildcards = [k for k in paths if "*" in k]
        self.shape: dict = {}
        self.inside: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[str, ...]]] = {}
        for keys in sorted(self.index, key=len):
            whole = next((keys[:i] for i in range(1, len(keys)) if keys[:i] in self.index), None)
            if whole is not None:  # read whole too: the rest is read from its text
                self.inside[keys] = (whole, keys[len(whole):])
                continue
            node = self.shape
            for k in keys[:-1]:
                node = node.setdefault(k, {})
            node[keys[-1]] = "VARCHAR"

    def get(self, keys: tuple[str, ...]) -> str:
        if "*" in keys:  # its own pass: a wildcard path gives a list, the first element that has a value wins
            return (f"CASE WHEN is_object THEN list_filter(json_extract_string(payload, {q(D.json_path(keys))}), "
                    f"lambda e: e IS NOT NULL)[1] END")
        if keys in self.inside:
            whole, rest = self.inside[keys]
            return f"try(json_extract_string({self.get(whole)}, {q(D.json_path(rest))}))"
        return "v." + ".".join(ident(k) for k in keys)

    def records_sql(self) -> str:
        return f"""lines AS (
    SELECT line_number, payload,
           -- a JSON text that opens with {{ can only be an object; the regex runs only for lines that do not
           starts_with(payload, '{{') OR regexp_matches(payload, '^\\s*\\{{') AS opens_object
    FROM _lines
    WHERE starts_with(payload, '{{') OR regexp_matches(payload, '\\S')  -- not blank (a blank line is NULL or spaces)
), records AS (
    -- try(): a malformed line gives NULL instead of failing the file
    SELECT line_number, 1 AS record_number, payload,
           CASE WHEN opens_object THEN try(json_transform(payload, {q(json.dumps(self.shape))})) END AS v,
           v IS NOT NULL AS is_object,
           v IS NOT NULL OR (NOT opens_object AND coalesce(json_valid(payload), false)) AS valid_json,
           NULL::VARCHAR AS structure_problem
    FROM lines
)"""

    def problem_sql(self) -> str | None:
        return None  # a JSON object's problems are its canonical keys'

    def attributes_sql(self) -> str:
        """Everything the declaration does not read: the record minus its top-level keys read whole (merge-patched
        away). A container the source reads only part of (`usage`, `context`) is kept whole: nothing is lost, and
        no empty shell is left where the read part was."""
        whole = sorted({keys[0] for keys in self.index if len(keys) == 1})
        consumed = "[" + ", ".join(q(k) for k in whole) + "]" if whole else "[]::VARCHAR[]"
        patch = json.dumps({k: None for k in whole})
        return (f"CASE WHEN is_object AND len(list_filter(json_keys(payload), lambda k: NOT list_contains({consumed}, k)))"
                f" > 0 THEN nullif(json_merge_patch(payload, {q(patch)})::VARCHAR, '{{}}')::JSON END")


class OtlpRecords:
    """OTLP/JSON as the OpenTelemetry Collector `file` exporter writes it: one ExportTraceServiceRequest per line,
    spans under resourceSpans[].scopeSpans[].spans[], attributes as key/value arrays. Each span is a record;
    `attributes/<name>` is a span attribute, `resource/attributes/<name>` one of its resource."""

    ATTR = ('[{"key": "VARCHAR", "value": {"stringValue": "VARCHAR", "intValue": "VARCHAR", "doubleValue": "VARCHAR",'
            ' "boolValue": "VARCHAR", "arrayValue": "JSON", "kvlistValue": "JSON", "bytesValue": "VARCHAR"}}]')
    LINE = ('{"resourceSpans": [{"resource": {"attributes": %s}, "scopeSpans": [{"scope": {"name": "VARCHAR", '
            '"version": "VARCHAR"}, "spans": ["JSON"]}]}]}') % ATTR
    SPAN = ('{"traceId": "VARCHAR", "spanId": "VARCHAR", "parentSpanId": "VARCHAR", "name": "VARCHAR", '
            '"kind": "VARCHAR", "startTimeUnixNano": "VARCHAR", "endTimeUnixNano": "VARCHAR", "attributes": %s, '
            '"status": {"code": "VARCHAR", "message": "VARCHAR"}, "traceState": "VARCHAR", "events": "JSON", '
            '"links": "JSON"}') % ATTR
    # Parts of a span that are not in the OTLP/JSON shape read as absent: an attribute value that is not an
    # AnyValue object, attributes that are not a key/value list, a status that is not an object. A regex over the
    # line finds the (rare) lines that have one; only their spans are then looked at.
    SHAPE = r'"value"\s*:\s*[^{\s]|"attributes"\s*:\s*[^\[\sn]|"status"\s*:\s*[^{\sn]'

    def __init__(self, source: Source):
        self.source = source
        keys = source.key_paths()
        self.mapped_attrs = sorted({k[1] for k in keys if len(k) == 2 and k[0] == "attributes"})
        self.mapped_resource = sorted({k[2] for k in keys if len(k) == 3 and k[:2] == ("resource", "attributes")})
        for k in keys:
            text = "/".join(k)
            if not (text in OTLP_SPAN_FIELDS or (len(k) == 2 and k[0] == "attributes")
                    or (len(k) == 3 and k[:2] == ("resource", "attributes"))):
                raise ValueError(f"{source.file}: {text!r} is not an OTLP span path")

    def get(self, keys: tuple[str, ...]) -> str:
        if keys[0] == "attributes":
            return f"av[list_position(ak, {q(keys[1])})]"
        if keys[0] == "resource":
            return f"rv[list_position(rk, {q(keys[2])})]"
        if keys[0] == "scope":
            return f"scope.{keys[1]}"
        if keys[0] == "status":
            return f"s.status.{keys[1]}"
        return f"s.{ident(keys[0])}"

    def records_sql(self) -> str:
        return f"""lines AS (
    SELECT line_number, payload, starts_with(payload, '{{') OR regexp_matches(payload, '^\\s*\\{{') AS opens_object
    FROM _lines
    WHERE starts_with(payload, '{{') OR regexp_matches(payload, '\\S')
), docs AS (
    SELECT line_number, payload, opens_object,
           CASE WHEN opens_object THEN try(json_transform(payload, {q(self.LINE)})) END AS doc,
           doc IS NOT NULL OR (NOT opens_object AND coalesce(json_valid(payload), false)) AS valid_json,
           doc IS NOT NULL AND regexp_matches(payload, {q(self.SHAPE)}) AS odd_shape
    FROM lines
), counted AS (
    SELECT *,
           -- per resource, once: its unmapped attributes as JSON object members, for every span's `attributes`
           CASE WHEN doc IS NOT NULL THEN flatten(flatten(list_transform(
               list_transform(doc.resourceSpans, lambda r: {{'attrs': r.resource.attributes, 'scopes': r.scopeSpans,
                   'members': array_to_string(otlp_members(r.resource.attributes, {self._resource_skip()}), ',')}}),
               lambda rr: list_transform(rr.scopes, lambda sc: list_transform(sc.spans, lambda sp:
                   {{'resource': rr.attrs, 'resource_members': rr.members, 'scope': sc.scope, 'span': sp}}))))) END AS found,
           -- "spanId" written as a key: a span under a level of the wrong JSON type would silently be missing
           (len(payload) - len(replace(payload, '"spanId"', ''))) // 8 AS span_keys
    FROM docs
), shaped AS (
    SELECT *,
           -- only when spans seem to be missing are the levels' JSON types looked at (three more parses)
           CASE WHEN doc IS NULL OR span_keys <= len(found) THEN NULL
                WHEN json_type(payload, '$.resourceSpans') IS DISTINCT FROM 'ARRAY'
                     THEN 'unparseable: resourceSpans is not an array'
                WHEN NOT list_bool_and(list_transform(json_type(payload, '$.resourceSpans[*].scopeSpans'),
                                                      lambda t: t IN ('ARRAY', 'NULL')))
                     THEN 'unparseable: scopeSpans is not an array'
                WHEN NOT list_bool_and(list_transform(json_type(payload, '$.resourceSpans[*].scopeSpans[*].spans'),
                                                      lambda t: t IN ('ARRAY', 'NULL')))
                     THEN 'unparseable: spans is not an array' END AS structure_problem,
           CASE WHEN structure_problem IS NULL THEN found END AS spans
    FROM counted
), exploded AS (
    -- a line that is not an OTLP request at all is one record, quarantined whole
    SELECT line_number, 1 AS record_number, payload, NULL AS item, valid_json, false AS line_ok, structure_problem,
           false AS odd_shape
    FROM shaped WHERE doc IS NULL OR structure_problem IS NOT NULL
    UNION ALL
    SELECT line_number, unnest(generate_series(1, len(spans))) AS record_number, NULL AS payload,
           unnest(spans) AS item, true, true, NULL, odd_shape
    FROM shaped WHERE doc IS NOT NULL AND structure_problem IS NULL
), spans AS (
    SELECT line_number, record_number, valid_json,
           -- attributes that are not a key/value list hide whether the span is a model call: quarantined
           coalesce(structure_problem, CASE WHEN starts_with(
                    CASE WHEN odd_shape THEN nullif(regexp_extract(item.span::VARCHAR, {q(self.SHAPE)}), '') END, '"attributes"')
                    THEN 'invalid_type: span attributes is not in the OTLP/JSON shape' END) AS structure_problem,
           coalesce(payload, item.span::VARCHAR, 'null') AS payload,  -- a null element is a record too
           line_ok AND coalesce(starts_with(item.span::VARCHAR, '{{'), false) AS is_object,
           CASE WHEN line_ok AND starts_with(item.span::VARCHAR, '{{') THEN json_transform(item.span, {q(self.SPAN)}) END AS s,
           item.scope AS scope, item.resource AS resource_attributes, item.resource_members AS resource_members,
           CASE WHEN odd_shape THEN nullif(regexp_extract(item.span::VARCHAR, {q(self.SHAPE)}), '') END AS odd_part
    FROM exploded
), records AS (
    SELECT *,
           list_transform(s.attributes, lambda a: a.key) AS ak,
           list_transform(s.attributes, lambda a: otlp_value_text(a.value)) AS av,
           list_transform(resource_attributes, lambda a: a.key) AS rk,
           list_transform(resource_attributes, lambda a: otlp_value_text(a.value)) AS rv,
           s.attributes AS span_attributes
    FROM spans
)"""

    def _resource_skip(self) -> str:
        return "[" + ", ".join(q(k) for k in self.mapped_resource) + "]::VARCHAR[]"

    def problem_sql(self) -> str | None:
        """A model-call span with a part outside the OTLP shape (which would read as absent) is quarantined."""
        return ("CASE WHEN odd_part IS NOT NULL THEN 'invalid_type: span ' || "
                "regexp_extract(odd_part, '\"(\\w+)\"', 1) || ' is not in the OTLP/JSON shape' END")

    def attributes_sql(self) -> str:
        span_keys = "[" + ", ".join(q(k) for k in self.mapped_attrs) + "]::VARCHAR[]"
        extras = ", ".join([
            "CASE WHEN s.name IS NOT NULL THEN '\"span.name\":' || to_json(s.name)::VARCHAR END",
            "CASE WHEN s.kind IS NOT NULL THEN '\"span.kind\":' || to_json(s.kind)::VARCHAR END",
            "CASE WHEN scope.name IS NOT NULL THEN '\"scope.name\":' || to_json(scope.name)::VARCHAR END",
            "CASE WHEN scope.version IS NOT NULL THEN '\"scope.version\":' || to_json(scope.version)::VARCHAR END",
            "CASE WHEN nullif(s.status.message, '') IS NOT NULL "
            "THEN '\"status.message\":' || to_json(s.status.message)::VARCHAR END",
            "CASE WHEN nullif(s.traceState, '') IS NOT NULL THEN '\"span.trace_state\":' || to_json(s.traceState)::VARCHAR END",
            "CASE WHEN s.events::VARCHAR NOT IN ('[]', 'null') THEN '\"span.events\":' || s.events::VARCHAR END",
            "CASE WHEN s.links::VARCHAR NOT IN ('[]', 'null') THEN '\"span.links\":' || s.links::VARCHAR END",
        ])
        return (f"CASE WHEN is_object THEN otlp_attributes(span_attributes, {span_keys}, resource_members, "
                f"[{extras}]) END")


class TypedRecords(JsonRecords):
    """Rows of a Parquet or CSV file whose cells stage.typed_lines() has already put in the struct `v` that
    JsonRecords parses each JSON line into: the same text per value (strings as they are, other values as their
    JSON), so typing, rules and reasons are the JSON path's, without writing each row as JSON and parsing it back.
    `attrs` is the columns the source does not read whole, as JSON, built from the file's schema; a row's JSON
    payload is only made for the rows that are quarantined (engine.py). Only for sources whose every path is
    read from `v` (no wildcard path, which reads the JSON text again)."""

    def records_sql(self) -> str:
        return """lines AS (
    SELECT line_number, v, attrs FROM _typed_lines
), records AS (
    SELECT line_number, 1 AS record_number, NULL::VARCHAR AS payload, v, attrs,
           true AS is_object, true AS valid_json, NULL::VARCHAR AS structure_problem
    FROM lines
)"""

    def attributes_sql(self) -> str:
        return "attrs"

    def read_whole(self) -> list[str]:
        """The top-level keys the source reads whole (JsonRecords.attributes_sql leaves them out of `attributes`)."""
        return sorted({keys[0] for keys in self.index if len(keys) == 1})


def typed_eligible(source: Source) -> bool:
    """Whether a source's rows can be read from typed columns (TypedRecords) instead of JSON text: it reads JSON
    records by flat names only (a nested path lets the JSON parse decide its types; a wildcard reads the text)."""
    if source.record != "json":
        return False
    reader = JsonRecords(source)
    return not reader.wildcards and all(kind == "VARCHAR" for kind in reader.shape.values())


READERS = {"json": JsonRecords, "otlp": OtlpRecords}


# --- typing and rules, from fields.yaml ------------------------------------------------------------------------

def raw_col(name: str) -> str:
    """The working column holding a canonical key's raw text (the first path with a value)."""
    return ident(f"_raw_{name}")


def _path_text(reader, p: Path_, zone: str) -> str:
    """A path entry's value as text, its conversions applied (scale and between apply to numbers: _number)."""
    if p.sum:
        parts = [reader.get(k) for k in p.sum]
        present = f"coalesce({', '.join(parts)})"
        total = " + ".join(f"coalesce({D.try_double(x)}, CASE WHEN {x} IS NULL THEN 0 END)" for x in parts)
        # a part that is not a number makes the sum one too: invalid, not absent
        return f"CASE WHEN {present} IS NOT NULL THEN coalesce(({total})::VARCHAR, 'not a number') END"
    if p.sum_keys:
        obj, part = reader.get(p.sum_keys[0]), p.sum_keys[1]
        values = (f"list_transform(list_filter(map_entries(try(json_transform({obj}, '\"MAP(VARCHAR, VARCHAR)\"'))), "
                  f"lambda e: contains(lower(e.key), {q(part)}) AND e.value IS NOT NULL), lambda e: e.value)")
        total = f"list_sum(list_transform({values}, lambda x: {D.try_double('x')}))"
        # no such key: absent; a value that is not a number: the sum is invalid, not absent
        return (f"CASE WHEN len({values}) > 0 THEN CASE WHEN list_bool_and(list_transform({values}, "
                f"lambda x: {D.try_double('x')} IS NOT NULL)) THEN ({total})::VARCHAR ELSE 'not a number' END END")
    if p.between:
        start, end = (reader.get(k) for k in p.between)
        return f"CASE WHEN {start} IS NOT NULL AND {end} IS NOT NULL THEN {start} || ' .. ' || {end} END"
    x = reader.get(p.keys)
    if p.strip:
        x = f"CASE WHEN starts_with({x}, {q(p.strip)}) THEN {x}[{len(p.strip) + 1}:] ELSE {x} END"
    if p.map:
        whens = " ".join(f"WHEN {q(k)} THEN {'NULL' if v is None else q(v)}" for k, v in p.map)
        x = f"CASE lower({x}) {whens} ELSE {x} END"
    if p.value is not None:
        x = f"CASE WHEN {x} IS NOT NULL THEN {q(p.value)} END"
    if p.unless is not None:
        x = f"CASE WHEN {_condition(reader, p.unless)} THEN NULL ELSE {x} END"
    return x


def _raw(reader, f: Field, paths: tuple[Path_, ...], zone: str) -> str:
    """The field's raw text: the first path with a non-blank value."""
    if not paths:
        return "NULL::VARCHAR"
    parts = []
    for p in paths:
        x = _path_text(reader, p, zone)
        parts.append(f"nullif(trim({x}), '')" if f.trim else f"nullif({x}, '')")
    return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"


def _number(reader, paths: tuple[Path_, ...], zone: str) -> str:
    """A number from the first path that has a value, scaled (unit conversion) or computed from two timestamps."""
    whens = []
    for p in paths:
        if p.between:
            start, end = (f"parse_timestamp({reader.get(k)}, {zone})" for k in p.between)
            whens.append(f"WHEN {reader.get(p.between[0])} IS NOT NULL AND {reader.get(p.between[1])} IS NOT NULL "
                         f"THEN (epoch_us({end}) - epoch_us({start})) / 1000.0")
        else:
            x = f"nullif({_path_text(reader, p, zone)}, '')"
            scaled = D.try_double(x) + (f" * {p.scale!r}" if p.scale is not None else "")
            whens.append(f"WHEN {x} IS NOT NULL THEN {scaled}")
    return "CASE " + " ".join(whens) + " END" if whens else "NULL::DOUBLE"


def _timestamp(f: Field, zone: str) -> str:
    """The first path's value parsed: epoch magnitudes, ISO with an offset, or without one in the source's zone."""
    return f"parse_timestamp({raw_col(f.name)}, {zone})"


def _range(x: str, f: Field) -> str | None:
    checks = []
    if f.min is not None:
        checks.append(f"{x} >= {f.min!r}")
    if f.max is not None:
        checks.append(f"{x} <= {f.max!r}")
    if f.max_abs is not None:
        checks.append(f"abs({x}) <= {f.max_abs!r}")
    if f.type == "number":
        checks.append(f"isfinite({x})")
    return " AND ".join(checks) or None


def _typed(reader, f: Field, paths: tuple[Path_, ...], zone: str) -> tuple[str, str | None]:
    """(typed value, problem): the canonical column's SQL and the SQL of its quarantine reason (NULL when fine)."""
    r = raw_col(f.name)
    name = f.reason_name
    default = _literal(f.default)
    if f.type == "string":
        value = r if f.default is None else f"coalesce({r}, {default})"
        if f.inherit and f.default is not None:  # a span with a parent asks its ancestors first (render_finish)
            value = f"CASE WHEN {raw_col('parent_span_id')} IS NULL THEN {value} ELSE {r} END"
        problem = f"CASE WHEN {r} IS NULL THEN 'missing_required_key: {name}' END" if f.required else None
        return value, problem
    if f.type == "timestamp":
        value = _timestamp(f, zone)
        missing = f"WHEN {r} IS NULL THEN 'missing_required_key: {name}' " if f.required else ""
        return value, (f"CASE {missing}WHEN {r} IS NOT NULL AND {ident(f.name)} IS NULL THEN 'unparseable_timestamp: {name}' "
                       f"WHEN year({ident(f.name)}) NOT BETWEEN 2000 AND 2100 THEN 'out_of_range: {name}' END")
    if f.type == "integer":
        d = ident(f"_num_{f.name}")  # try_cast(raw AS DOUBLE), computed once in `picked`
        ok = " AND ".join(filter(None, [f"{d} = floor({d})", _range(d, f)]))
        value = f"CASE WHEN {ok} THEN {d}::BIGINT WHEN {r} IS NULL THEN {default} END"
        return value, (f"CASE WHEN {r} IS NOT NULL AND {d} IS NULL THEN 'invalid_type: {name}' "
                       f"WHEN {r} IS NOT NULL AND {ident(f.col)} IS NULL THEN 'out_of_range: {name}' END")
    if f.type == "number":
        n = _number(reader, paths, zone)
        value = n if f.default is None else f"coalesce({n}, CASE WHEN {r} IS NULL THEN {default} END)"
        rng = _range(ident(f.col), f)
        return value, (f"CASE WHEN {r} IS NOT NULL AND {ident(f.col)} IS NULL THEN 'invalid_type: {name}' "
                       + (f"WHEN NOT ({rng}) THEN 'out_of_range: {name}' " if rng else "") + "END")
    if f.type == "boolean":
        value = (f"CASE WHEN lower({r}) IN ('true', '1') THEN true WHEN lower({r}) IN ('false', '0') THEN false "
                 f"WHEN {r} IS NULL THEN {default} END")
        return value, f"CASE WHEN {ident(f.col)} IS NULL AND {r} IS NOT NULL THEN 'invalid_type: {name}' END"
    if f.type == "enum":
        fallback = default
        if f.default_if:
            whens = " ".join(f"WHEN {raw_col(k)} IS NOT NULL THEN {q(v)}" for k, v in f.default_if)
            fallback = f"CASE {whens} ELSE {default} END"
        value = f"coalesce(lower({r}), {fallback})"
        values = ", ".join(q(v) for v in f.values)
        return value, f"CASE WHEN {ident(f.col)} NOT IN ({values}) THEN 'out_of_range: {name}' END"
    if f.type in ("object", "scalar_object"):
        # the value is an object, or (CSV, exports that encode it) a string holding one
        value = f"CASE WHEN {r} IS NULL OR {r} = 'null' THEN NULL ELSE try(json({r})) END"
        bad = f"{r} IS NOT NULL AND {r} <> 'null' AND ({ident(f.col)} IS NULL OR NOT starts_with(ltrim({r}), '{{'))"
        if f.type == "object":
            return value, f"CASE WHEN {bad} THEN 'invalid_type: {name}' END"
        x = ident(f.col)
        return value, f"""CASE WHEN {bad} THEN 'invalid_type: {name}'
                 -- a nested object or array needs a {{ or [ after the opening brace: only then is it parsed again
                 WHEN (contains({x}[2:], '{{') OR contains({x}, '[')) AND list_has_any(json_type({x}, '$.*'), ['OBJECT', 'ARRAY'])
                      THEN 'invalid_type: {name}'
                 -- DuckDB's JSON reader accepts NaN / Infinity, which strict JSON readers (and analysts' tools) reject
                 WHEN (contains({x}, 'NaN') OR contains({x}, 'Infinity')) AND list_bool_or(list_transform(json_extract({x}, '$.*'),
                      lambda j: CASE WHEN json_type(j) = 'DOUBLE' THEN NOT isfinite(try_cast(j AS DOUBLE)) END))
                      THEN 'invalid_type: {name}' END"""
    raise ValueError(f.type)


def _condition(reader, c: Condition) -> str:
    if c.path:
        x = reader.get(c.path)
        if c.values:
            test = f"lower({x}) IN ({', '.join(q(v) for v in c.values)})"
            return f"({x} IS NULL OR {test})" if c.absent else f"coalesce({test}, false)"
        return f"({x} IS NOT NULL)"
    if c.any:
        inner = "(" + " OR ".join(_condition(reader, x) for x in c.any) + ")"
    else:
        inner = "(" + " AND ".join(_condition(reader, x) for x in c.all) + ")"
    return f"(NOT {inner})" if c.negate else inner


# --- the macro of one source -----------------------------------------------------------------------------------

def row_shape(stream: Stream) -> list[tuple[str, str]]:
    """The columns every source of a stream returns, in order, with their types."""
    head = [("source_file", "VARCHAR"), ("line_number", "BIGINT"), ("record_number", "BIGINT"),
            ("dedup_key", "VARCHAR"), ("reason", "VARCHAR"), ("skip_reason", "VARCHAR"), ("payload", "VARCHAR")]
    body = [(f.col, SQL_TYPES[f.type]) for f in stream.fields.values()]
    return head + body + [("attributes", "JSON")]


def macro_name(source: Source, columns: bool = False) -> str:
    return f"_rows_{source.name}" + ("_columns" if columns else "")


@cache
def render_source(name: str, from_columns: bool = False) -> str:
    """The source's parse macro; `from_columns`: over the columns of a columnar file (TypedRecords), not JSON text."""
    source = next(s for s in sources() if s.name == name)
    stream = streams()[source.stream]
    reader = TypedRecords(source) if from_columns else READERS[source.record](source)
    # timestamps without a zone: the source's documented zone, else the data directory's setting, else rejected
    zone = q(source.naive_timezone) if source.naive_timezone else "naive_zone"
    raws, typed, problems = [], [], []
    for f in stream.fields.values():
        paths = source.fields.get(f.name, ())
        raws.append(f"{_raw(reader, f, paths, zone)} AS {raw_col(f.name)}")
        if f.type == "integer":
            raws.append(f"{D.try_double(raw_col(f.name))} AS {ident('_num_' + f.name)}")
        value, problem = _typed(reader, f, paths, zone)
        typed.append(f"{value} AS {ident(f.col)}")
        if problem:
            problems.append(problem)
        if f.at_most:
            other = stream.fields[f.at_most]
            # an unknown bound counts as 0: cached tokens without input tokens would price below nothing
            problems.append(f"CASE WHEN {ident(f.col)} > coalesce({ident(other.col)}, 0) THEN "
                            f"'out_of_range: {f.reason_name} > {other.reason_name}' END")
    reader_problem = reader.problem_sql()
    if reader_problem:
        problems.append(reader_problem)
    for group in stream.one_of:
        missing = " AND ".join(f"{ident(stream.fields[k].col)} IS NULL" for k in group)
        problems.append(f"CASE WHEN {missing} THEN 'missing_required_key: {' or '.join(group)}' END")
    keep = _condition(reader, source.keep) if source.keep else "true"
    skip_names = [_path_text(reader, p, zone) for p in source.skip_reason]
    skip_reason = f"coalesce({', '.join(skip_names + [q('not a ' + ('model call' if source.stream == 'inference' else 'track call'))])})"
    columns = ",\n       ".join(f"{ident(c)}::{t} AS {ident(c)}" for c, t in row_shape(stream)[7:-1])
    typed_sql = ",\n           ".join(typed)
    raws_sql = ",\n           ".join(raws)
    dedup = ident(stream.fields[stream.dedup_key].col)
    return f"""-- Rendered by aiso_pipeline/ingest/render.py from ingest/sources/{source.file} and fields.yaml: do not edit.
CREATE OR REPLACE TEMP MACRO {macro_name(source, from_columns)}(source_file, naive_zone) AS TABLE
WITH {reader.records_sql()}, picked AS (
    SELECT records.*, {keep} AS keep,
           {raws_sql}
    FROM records
), typed AS (
    SELECT *, {typed_sql}
    FROM picked
), checked AS (
    SELECT *,
           CASE WHEN NOT valid_json THEN 'unparseable: invalid JSON'
                WHEN structure_problem IS NOT NULL THEN structure_problem
                WHEN NOT is_object THEN 'unparseable: not a JSON object'
                WHEN NOT keep THEN NULL
                ELSE {D.concat_reasons(problems)} END AS reason
    FROM typed
)
SELECT source_file::VARCHAR AS source_file, line_number::BIGINT AS line_number,
       record_number::BIGINT AS record_number, {dedup}::VARCHAR AS dedup_key, reason,
       CASE WHEN reason IS NULL AND is_object AND NOT keep THEN {skip_reason} END AS skip_reason,
       CASE WHEN reason IS NOT NULL THEN payload END AS payload,
       {columns},
       {reader.attributes_sql()} AS attributes
FROM checked;"""


def render_stream(stream: str) -> str:
    """The stream's recognizer and its loaded keys (for dedup.sql); each source's macro is render_source's."""
    key = streams()[stream].dedup_key
    history = (f"CREATE OR REPLACE TEMP VIEW _history AS SELECT {ident(key)} AS dedup_key, key_hash, dt "
               f"FROM raw.{stream}_events;")
    return "\n\n".join([render_recognize(stream), history])


@cache
def render_recognize(stream: str) -> str:
    """_recognize_<stream>(): for the head of the staged file, how many records each source's `recognize` matches.
    The fallback (flat canonical) source counts the records that carry its required keys under their first
    names: a canonical file that happens to hold another tool's key (`trace_id`, `type`) stays canonical."""

    class Raw:
        def get(self, keys):
            return f"try(json_extract_string(payload, {q(D.json_path(keys))}))"
    conditions = []
    for s in for_stream(stream):
        if s.recognize:
            conditions.append((s, _condition(Raw(), s.recognize)))
        else:
            required = [f.name for f in streams()[stream].fields.values() if f.required]
            firsts = [s.fields[k][0].keys for k in required if s.fields.get(k) and s.fields[k][0].keys]
            conditions.append((s, "(" + " AND ".join(f"{Raw().get(k)} IS NOT NULL" for k in firsts) + ")"))
    parts = [f"SELECT {q(s.name)} AS source, count(*) FILTER (WHERE {cond}) AS n FROM head" for s, cond in conditions]
    union = "\n    UNION ALL ".join(parts)
    return f"""CREATE OR REPLACE TEMP MACRO _recognize_{stream}() AS TABLE
WITH head AS (
    SELECT payload FROM _lines
    WHERE starts_with(payload, '{{') OR regexp_matches(payload, '^\\s*\\{{')
    LIMIT {RECOGNIZE_SAMPLE}
)
SELECT * FROM ({union}) WHERE n > 0;"""


@cache
def render_finish(stream: str) -> str:
    """After every file of the partition is parsed: a span that lacks an inheritable key (user, session, feature)
    takes it from its closest ancestor in the trace that has it (spans of any file of the day, skipped ones
    included: an agent or HTTP span often carries the user), then gets the key's default."""
    s = streams()[stream]
    keys = [f for f in s.fields.values() if f.inherit]
    if not keys or not {"trace_id", "span_id", "parent_span_id"} <= set(s.fields):
        return ""
    cols = [ident(f.col) for f in keys]
    missing = " OR ".join(f"{c} IS NULL" for c in cols)
    w_missing = " OR ".join(f"w.{c} IS NULL" for c in cols)
    carried = ", ".join(f"coalesce(w.{c}, s.{c})" for c in cols)
    picked = ", ".join(f"arg_max({c}, depth) AS {c}" for c in cols)  # the last step carries the closest values
    sets = ", ".join(f"{c} = coalesce(p.{c}, i.{c})" for c in cols)
    defaults = ", ".join(f"{ident(f.col)} = coalesce({ident(f.col)}, {q(f.default)})" for f in keys
                         if f.default is not None)
    return f"""-- Rendered by aiso_pipeline/ingest/render.py from fields.yaml (`inherit`): do not edit.
CREATE OR REPLACE TEMP TABLE _inherited AS
WITH RECURSIVE spans AS (
    -- one row per span, however often it was delivered (a file landed twice would make the walk branch at every
    -- level); a quarantined span still links its parent and carries what it says
    SELECT trace_id, span_id, min(parent_span_id) AS parent_span_id, {", ".join(f"min({c}) AS {c}" for c in cols)}
    FROM _parsed
    WHERE span_id IS NOT NULL
    GROUP BY trace_id, span_id
), walk AS (
    SELECT source_file, line_number, record_number, trace_id, parent_span_id AS next, {", ".join(cols)}, 0 AS depth
    FROM _parsed
    WHERE reason IS NULL AND skip_reason IS NULL AND parent_span_id IS NOT NULL AND ({missing})
    UNION ALL
    SELECT w.source_file, w.line_number, w.record_number, w.trace_id, s.parent_span_id, {carried}, w.depth + 1
    FROM walk AS w
    JOIN spans AS s ON s.span_id = w.next AND s.trace_id IS NOT DISTINCT FROM w.trace_id
    WHERE w.depth < 64 AND ({w_missing})  -- a cycle of parents ends here
)
SELECT source_file, line_number, record_number, {picked}
FROM walk
WHERE depth > 0
GROUP BY source_file, line_number, record_number;

UPDATE _parsed AS p SET {sets}
FROM _inherited AS i
WHERE p.source_file = i.source_file AND p.line_number = i.line_number AND p.record_number = i.record_number;

UPDATE _parsed SET {defaults}
WHERE parent_span_id IS NOT NULL AND ({missing});"""
