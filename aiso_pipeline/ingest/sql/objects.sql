-- What both streams' parse steps start from: the non-blank staged lines, whether each is valid JSON and a JSON
-- object, and one timestamp parser (ISO-8601 with an offset, or epoch milliseconds). DuckDB-specific: macros.
CREATE OR REPLACE TEMP MACRO parse_timestamp(raw) AS
    CASE WHEN regexp_full_match(raw, '-?[0-9]{1,15}(\.[0-9]+)?')  -- epoch milliseconds
             THEN try(to_timestamp(raw::DOUBLE / 1000))
         WHEN regexp_matches(raw, '([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)$')  -- ISO-8601 with an offset
             THEN try_cast(raw AS TIMESTAMPTZ) END;

CREATE OR REPLACE TEMP VIEW _objects AS
WITH lines AS (
    SELECT source_file, line_number, payload, coalesce(json_valid(payload), false) AS valid_json
    FROM _lines
    WHERE regexp_matches(payload, '\S')  -- not blank; trim() would copy every line
)
SELECT *, valid_json AND regexp_matches(payload, '^\s*\{') AS is_object  -- valid JSON opening with { is an object
FROM lines;
