-- Per model and side, from drift_hist: rows, and per column non-null values and distinct values / buckets.
-- Portable SQL.
SELECT model, drift_side{summaries}
FROM drift_hist
GROUP BY model, drift_side
