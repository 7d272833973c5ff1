-- Two-sample Kolmogorov-Smirnov statistic D = max |F_ref(x) - F_cur(x)| of one column for one model, exact: the
-- empirical CDFs are step functions that only change at observed values, so evaluating them at every distinct
-- value finds the supremum. Used when the current side is too large to fetch. Portable SQL.
WITH drift_rows AS (
{rows}
),
counts AS (
    SELECT c0 AS v,
           SUM(CASE WHEN is_current THEN 0 ELSE 1 END) AS n_ref,
           SUM(CASE WHEN is_current THEN 1 ELSE 0 END) AS n_cur
    FROM drift_rows
    WHERE model = $model AND c0 IS NOT NULL
    GROUP BY c0
),
ecdf AS (
    SELECT SUM(n_ref) OVER (ORDER BY v ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum_ref,
           SUM(n_cur) OVER (ORDER BY v ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum_cur
    FROM counts
)
SELECT MAX(ABS(CAST(cum_ref AS DOUBLE) / $n_ref - CAST(cum_cur AS DOUBLE) / $n_cur)) AS d
FROM ecdf
