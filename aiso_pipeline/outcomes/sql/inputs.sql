-- What joined_outcomes(D) and its attribution checks were computed from (joined_attribute.sql, joined_write.sql,
-- attribution_checks.sql): every row of partition D of both streams and of inference partitions D-k .. D-1, and
-- the rows of partitions D+1 .. D+k whose timestamp can fall in a window of one of D's inferences (up to end of
-- D + window). Per partition, the count and latest loaded_at of those rows: a re-ingest sets loaded_at anew, so
-- any added, changed or removed relevant row changes this, while a new day's rows that all lie past the window
-- (the usual case for D-2 when day D lands) do not. Reads two narrow columns of a few partitions. Portable SQL.
SELECT 'inference' AS stream, dt, count(*) AS rows, max(loaded_at) AS loaded_at
FROM raw.inference_events
WHERE dt BETWEEN $dt::DATE - $days AND $dt::DATE + $days
  AND (dt <= $dt::DATE OR "timestamp" <= ($dt::DATE + 1)::TIMESTAMPTZ + $window)
GROUP BY dt
UNION ALL
SELECT 'product', dt, count(*), max(loaded_at)
FROM raw.product_events
WHERE dt BETWEEN $dt::DATE AND $dt::DATE + $days
  AND (dt = $dt::DATE OR "timestamp" <= ($dt::DATE + 1)::TIMESTAMPTZ + $window)
GROUP BY dt
ORDER BY ALL;
