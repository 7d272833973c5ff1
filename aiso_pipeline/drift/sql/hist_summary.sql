-- Per model and side, from drift_hist: rows, and per column non-null values and distinct values / buckets.
-- Portable SQL.
SELECT model, is_current{summaries}
FROM drift_hist
GROUP BY model, is_current
