-- A deterministic pseudo-random sample of one side of one model, for an Evidently HTML report.
-- DuckDB-specific: hash() (Spark has hash() too, with other values, so it would pick another sample).
WITH drift_rows AS (
{rows}
)
SELECT *
FROM drift_rows
WHERE model = $model AND is_current = $is_current
ORDER BY hash({hash_args})
LIMIT $max_rows
