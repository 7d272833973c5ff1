-- Per model and side: row count and, per column, non-null count, population standard deviation (numeric) and an
-- approximate distinct count. One scan. Portable SQL.
WITH drift_rows AS (
{rows}
)
SELECT model, drift_side, COUNT(*) AS n_rows{aggregates}
FROM drift_rows
GROUP BY model, drift_side
