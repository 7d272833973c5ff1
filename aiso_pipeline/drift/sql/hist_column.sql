-- One column's counts from drift_hist, for the models where it has at most $max_groups distinct values or buckets
-- (more categories than that are not fetched; the column is reported as skipped). Portable SQL.
SELECT h.model, h.is_current, h.{c} AS v, h.n
FROM drift_hist AS h
JOIN (
    SELECT model
    FROM drift_hist
    WHERE g_{c} = 0 AND {c} IS NOT NULL
    GROUP BY model
    HAVING COUNT(*) <= $max_groups
) AS small ON small.model = h.model
WHERE h.g_{c} = 0 AND h.{c} IS NOT NULL
