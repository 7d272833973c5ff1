-- Rows with features per day over $from .. $to: a cached day's shapes (meta.feature_shapes) are reused only while
-- this count is what it was when they were read (a safety net for writes that bypass ingest). Portable SQL.
SELECT dt, count(features) AS n
FROM {source}
WHERE dt BETWEEN $from AND $to
GROUP BY dt
