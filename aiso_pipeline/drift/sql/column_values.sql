-- The non-null values of one column for one model (small-reference Kolmogorov-Smirnov path: at most
-- small_reference_rows reference and ks_exact_max_rows current values). Portable SQL.
WITH drift_rows AS (
{rows}
)
SELECT is_current, c0 AS v
FROM drift_rows
WHERE model = $model AND c0 IS NOT NULL
