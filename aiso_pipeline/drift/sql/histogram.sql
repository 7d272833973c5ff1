-- Per model, side and column: counts per category (categorical) or per value bucket (numeric), every column in one
-- scan through GROUPING SETS, kept in the temp table drift_hist (small: bounded by categories and buckets) for
-- hist_summary.sql and hist_column.sql to read. Rows whose value is NULL form their own group per column.
-- drift_grid (a temp table engine.py writes) holds the bucket step per model and numeric column; models missing
-- from it are not counted. Portable SQL, but for CREATE TEMP TABLE ... AS (Spark: CACHE TABLE ... AS).
CREATE OR REPLACE TEMP TABLE drift_hist AS
WITH drift_rows AS (
{rows}
),
binned AS (
    SELECT r.model, r.is_current{bins}
    FROM drift_rows AS r
    JOIN drift_grid AS g ON g.model = r.model
)
SELECT model, is_current{outputs}, COUNT(*) AS n
FROM binned
GROUP BY GROUPING SETS ({sets})
