-- The keys of the features JSON objects and their JSON types, per model, over the current day and the reference
-- window: one row per distinct shape, merged in Python (numbers are numeric, strings and booleans categorical).
-- DuckDB-specific: json_structure (Spark: schema_of_json over the distinct documents). {model_filter} is empty or
-- the model_filter fragment (one model, for sample_for_report).
SELECT DISTINCT model, json_structure(features) AS structure
FROM (
    SELECT model, features
    FROM {source}
    WHERE dt = $dt{model_filter}
    UNION ALL
    SELECT model, features
    FROM {source}
    WHERE dt BETWEEN $ref_start AND $ref_end
      AND model IN (SELECT model FROM {source} WHERE dt = $dt){model_filter}
) AS t
WHERE features IS NOT NULL
