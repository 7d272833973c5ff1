-- The keys of the features JSON objects and their JSON types, per model, over the current day and the reference
-- window of the models compared (ref_models: $rm0, $rm1, ... or $model): one row per distinct shape, merged in
-- Python (numbers are numeric, strings and booleans categorical).
-- DuckDB-specific: json_structure (Spark: schema_of_json over the distinct documents).
SELECT DISTINCT model, json_structure(features) AS structure
FROM (
    SELECT model, features
    FROM {source}
    WHERE dt = $dt AND model IN ({ref_models})
    UNION ALL
    SELECT model, features
    FROM {source}
    WHERE dt BETWEEN $ref_start AND $ref_end AND model IN ({ref_models})
) AS t
WHERE features IS NOT NULL
