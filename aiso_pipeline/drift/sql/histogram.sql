-- Per model, side and column: counts per category (categorical) or per value / grid bucket (numeric), every column
-- in one scan through GROUPING SETS. drift_grid (a temp table written by engine.py) holds the bucket step per model
-- and column. Rows whose value is NULL form their own group and are dropped in Python. Portable SQL.
WITH drift_rows AS (
{rows}
),
binned AS (
    SELECT r.model, r.drift_side{bins}
    FROM drift_rows AS r
    JOIN drift_grid AS g ON g.model = r.model
)
SELECT model, drift_side{outputs}, COUNT(*) AS n
FROM binned
GROUP BY GROUPING SETS ({sets})
