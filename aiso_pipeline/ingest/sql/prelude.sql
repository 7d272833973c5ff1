-- What every source's parse starts from (the macros rendered by ingest/render.py use these). DuckDB-specific:
-- macros, lambdas, json functions.

-- A timestamp: epoch seconds, milliseconds, microseconds or nanoseconds told apart by magnitude (|x| < 1e11: s;
-- < 1e14: ms; < 1e17: µs; else ns: every instant of 2000-2100 falls in exactly one range), integers computed
-- exactly; ISO-8601 with an offset or Z; ISO-8601 without one only when the data directory names a zone for it
-- (reference/ingest.yaml), else NULL (quarantined, never guessed). Epochs written as doubles (1.7731332e+18) count.
CREATE OR REPLACE TEMP MACRO epoch_micros(raw) AS
    CASE WHEN regexp_full_match(raw, '-?[0-9]{1,19}') THEN
             CASE WHEN abs(raw::HUGEINT) < 100000000000 THEN raw::HUGEINT * 1000000
                  WHEN abs(raw::HUGEINT) < 100000000000000 THEN raw::HUGEINT * 1000
                  WHEN abs(raw::HUGEINT) < 100000000000000000 THEN raw::HUGEINT
                  ELSE raw::HUGEINT // 1000 END
         WHEN regexp_full_match(raw, '-?[0-9]{1,19}\.[0-9]+|-?[0-9](\.[0-9]+)?[eE]\+?[0-9]{1,2}') THEN  -- or a double's text
             round(CASE WHEN abs(raw::DOUBLE) < 1e11 THEN raw::DOUBLE * 1e6
                        WHEN abs(raw::DOUBLE) < 1e14 THEN raw::DOUBLE * 1e3
                        WHEN abs(raw::DOUBLE) < 1e17 THEN raw::DOUBLE
                        ELSE raw::DOUBLE / 1e3 END)::HUGEINT END;

CREATE OR REPLACE TEMP MACRO parse_timestamp(raw, naive_zone) AS
    CASE WHEN regexp_full_match(raw, '-?[0-9]{1,19}(\.[0-9]+)?|-?[0-9](\.[0-9]+)?[eE]\+?[0-9]{1,2}')
             THEN try(to_timestamp(0) + to_microseconds(epoch_micros(raw)::BIGINT))
         -- ISO-8601 with an offset after the time (a date alone is not an instant: its day is not an offset)
         WHEN regexp_matches(raw, '[0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?\s*([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)$')
             THEN try_cast(raw AS TIMESTAMPTZ)
         WHEN naive_zone IS NOT NULL
              AND regexp_full_match(raw, '[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?')
             THEN try(timezone(naive_zone, try_cast(raw AS TIMESTAMP))) END;

-- An OTLP AnyValue ({"stringValue": ...} | intValue | doubleValue | boolValue | arrayValue | kvlistValue |
-- bytesValue) as text (arrays and key/value lists as their JSON), and as a JSON value for `attributes`.
CREATE OR REPLACE TEMP MACRO otlp_value_text(v) AS
    coalesce(v.stringValue, v.intValue, v.doubleValue, v.boolValue, v.arrayValue::VARCHAR, v.kvlistValue::VARCHAR,
             v.bytesValue);

CREATE OR REPLACE TEMP MACRO otlp_value_json(v) AS
    CASE WHEN v.stringValue IS NOT NULL THEN to_json(v.stringValue)::VARCHAR
         WHEN v.intValue IS NOT NULL
             THEN coalesce(try_cast(v.intValue AS BIGINT)::VARCHAR, to_json(v.intValue)::VARCHAR)
         WHEN v.doubleValue IS NOT NULL
             THEN CASE WHEN isfinite(try_cast(v.doubleValue AS DOUBLE)) THEN try_cast(v.doubleValue AS DOUBLE)::VARCHAR
                       ELSE to_json(v.doubleValue)::VARCHAR END
         WHEN v.boolValue IS NOT NULL
             THEN CASE WHEN lower(v.boolValue) IN ('true', 'false') THEN lower(v.boolValue)
                       ELSE to_json(v.boolValue)::VARCHAR END
         WHEN v.arrayValue IS NOT NULL THEN v.arrayValue::VARCHAR
         WHEN v.kvlistValue IS NOT NULL THEN v.kvlistValue::VARCHAR
         WHEN v.bytesValue IS NOT NULL THEN to_json(v.bytesValue)::VARCHAR
         ELSE 'null' END;

-- '"key":value' members of a JSON object from an OTLP key/value list, leaving out the keys in `skip`.
CREATE OR REPLACE TEMP MACRO otlp_members(attrs, skip) AS
    list_transform(list_filter(coalesce(attrs, []), lambda a: a.key IS NOT NULL AND NOT list_contains(skip, a.key)),
                   lambda a: to_json(a.key)::VARCHAR || ':' || otlp_value_json(a.value));

-- A span's `attributes`: the span attributes no declaration maps, the span's other parts (`extras`: '"key":value'
-- members or NULL: its name, kind, scope, status message, events, links), and its resource's unmapped attributes
-- under "resource" (`resource_members`: built once per resource).
CREATE OR REPLACE TEMP MACRO otlp_attributes(span_attrs, span_skip, resource_members, extras) AS
    nullif('{' || array_to_string(list_filter(otlp_members(span_attrs, span_skip) || extras || [
        CASE WHEN resource_members <> '' THEN '"resource":{' || resource_members || '}' END
    ], lambda m: m IS NOT NULL), ',') || '}', '{}')::JSON;

-- No file staged yet: no lines, with the columns a stage has (so the parse macros bind, e.g. to create _parsed).
CREATE OR REPLACE TEMP TABLE _staged (payload VARCHAR);
CREATE OR REPLACE TEMP VIEW _lines AS SELECT rowid + 1 AS line_number, payload FROM _staged;
