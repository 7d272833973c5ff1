-- What both streams' parse steps start from. _objects(keys): the non-blank lines of the staged file (_lines, from
-- stage_<format>.sql), each parsed once into a struct of the stream's keys (`s`, NULL when the line is not a
-- valid JSON object); `unknown_keys` lists the keys `keys` does not name. One timestamp parser (ISO-8601 with an
-- offset, or epoch milliseconds). DuckDB-specific: macros, json_transform, lambdas.
CREATE OR REPLACE TEMP MACRO parse_timestamp(raw) AS
    CASE WHEN regexp_full_match(raw, '-?[0-9]{1,15}(\.[0-9]+)?')  -- epoch milliseconds
             THEN try(to_timestamp(raw::DOUBLE / 1000))
         WHEN regexp_matches(raw, '([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)$')  -- ISO-8601 with an offset
             THEN try_cast(raw AS TIMESTAMPTZ) END;

-- No file staged yet: no lines, with the columns a stage has (so the parse macros bind, e.g. to create _parsed).
CREATE OR REPLACE TEMP TABLE _staged (payload VARCHAR);
CREATE OR REPLACE TEMP VIEW _lines AS SELECT rowid + 1 AS line_number, payload FROM _staged;

CREATE OR REPLACE TEMP MACRO _objects(keys) AS TABLE
WITH lines AS (
    SELECT line_number, payload,
           -- a JSON text that opens with { can only be an object; the regex runs only for lines that do not
           starts_with(payload, '{') OR regexp_matches(payload, '^\s*\{') AS opens_object
    FROM _lines
    WHERE starts_with(payload, '{') OR regexp_matches(payload, '\S')  -- not blank (a blank line is NULL or spaces)
), parsed AS (
    -- try(): a malformed line gives NULL instead of failing the file
    SELECT *, CASE WHEN opens_object THEN try(json_transform(payload, keys)) END AS s
    FROM lines
)
SELECT line_number, payload, s,
       s IS NOT NULL AS is_object,
       s IS NOT NULL OR (NOT opens_object AND coalesce(json_valid(payload), false)) AS valid_json,
       CASE WHEN s IS NOT NULL THEN list_filter(json_keys(payload), lambda k: NOT list_contains(json_keys(keys), k))
       END AS unknown_keys
FROM parsed;
