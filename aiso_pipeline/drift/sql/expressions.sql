-- Fragments engine.py assembles queries from. Each starts at a "-- name:" line; {c} is a generated alias
-- (c0, c1, ...), {expr} a whitelisted column identifier or a feature_value fragment, {index} a generated integer.

-- name: numeric
-- A numeric column as DOUBLE, with NaN and +-Infinity as NULL (Evidently drops them before testing). NaN compares
-- greater than every number in DuckDB and in Spark SQL, so BETWEEN excludes it. TRY_CAST: DuckDB and Spark >= 3.2.
CASE WHEN TRY_CAST({expr} AS DOUBLE) BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308
     THEN TRY_CAST({expr} AS DOUBLE) END AS {c}

-- name: categorical
-- A categorical column as text (booleans become 'true' / 'false' in DuckDB and Spark alike).
CAST({expr} AS VARCHAR) AS {c}

-- name: feature_values
-- DuckDB-specific: json_extract_string with a list of JSON paths parses each document once and returns a list
-- of strings (Spark: from_json(features, 'map<string,string>') then map lookups).
json_extract_string(features, $feature_paths) AS drift_feature_values

-- name: feature_value
-- DuckDB-specific: 1-based list indexing (Spark: element_at(list, {index}), also 1-based).
drift_feature_values[{index}]

-- name: row_sample
-- Keep about {keep} / 1e6 of a side's rows, chosen before any JSON is parsed: the report sample (sample.sql) then
-- orders far fewer rows. Deterministic for the same table. DuckDB-specific: rowid (Spark: monotonically_increasing_id).
AND hash(rowid) % 1000000 < {keep}

-- name: block_sample
-- TABLESAMPLE SYSTEM ... REPEATABLE: SQL standard, DuckDB (Spark: TABLESAMPLE (1 PERCENT)). Applied before WHERE.
TABLESAMPLE SYSTEM (1 PERCENT) REPEATABLE (42)

-- name: numeric_moments
COUNT({c}) AS n_{c}, STDDEV_POP({c}) AS sd_{c}

-- name: numeric_bin
-- Step h_c per model from drift_grid: NULL = column not needed for that model, 0 = exact values, > 0 = the value
-- rounded to a multiple of h.
CASE WHEN g.h_{c} IS NULL THEN NULL WHEN g.h_{c} > 0 THEN ROUND(r.{c} / g.h_{c}) * g.h_{c} ELSE r.{c} END AS {c}

-- name: categorical_bin
r.{c} AS {c}

-- name: column_summary
-- rows of the model and side (the NULL group included), non-null values, distinct values (or buckets)
SUM(CASE WHEN g_{c} = 0 THEN n ELSE 0 END) AS rows_{c},
SUM(CASE WHEN g_{c} = 0 AND {c} IS NOT NULL THEN n ELSE 0 END) AS n_{c},
SUM(CASE WHEN g_{c} = 0 AND {c} IS NOT NULL THEN 1 ELSE 0 END) AS k_{c}

-- name: bin_output
{c}, GROUPING({c}) AS g_{c}

-- name: bin_set
(model, is_current, {c})
