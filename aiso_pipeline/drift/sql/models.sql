-- The models with rows on the current day. Portable SQL.
SELECT DISTINCT model
FROM {source}
WHERE dt = $dt
