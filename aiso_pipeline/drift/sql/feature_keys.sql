-- The keys of the features JSON objects and their JSON types, per day and model, over days $from .. $to: one row
-- per distinct shape, merged in Python (numbers are numeric, strings and booleans categorical; nested objects and
-- arrays are not features). For raw.inference_events, engine.py keeps these rows per day in meta.feature_shapes.
-- DuckDB-specific: json_keys, json_type with a wildcard path (Spark: schema_of_json over the distinct documents).
SELECT DISTINCT dt, model, json_keys(features) AS keys, json_type(features, '$.*') AS types
FROM {source}
WHERE dt BETWEEN $from AND $to
  AND features IS NOT NULL
