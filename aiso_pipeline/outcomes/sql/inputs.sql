-- What day D's outcomes were computed from, in two scopes. 'join' (joined_attribute.sql, joined_write.sql): every
-- row of inference partition D, and the rows of inference partitions D+1 .. D+k and product partitions D .. D+k
-- whose timestamp can fall in a window of one of D's inferences (up to end of D + window). 'checks'
-- (attribution_checks.sql): every row of product partition D and of inference partitions D-k-7 .. D (the checks
-- look an id up in the 7 partitions before the join's: a call loaded late there turns `unknown` into late). Per
-- scope and partition, the count and latest loaded_at of those rows: a re-ingest sets loaded_at anew, so any
-- added, changed or removed relevant row changes this, while a new day's rows that all lie past the window (the
-- usual case for D-2 when day D lands) do not. Reads two narrow columns of a few partitions. Portable SQL.
SELECT 'join' AS scope, 'inference' AS stream, dt, count(*) AS rows, max(loaded_at) AS loaded_at
FROM raw.inference_events
WHERE dt BETWEEN $dt::DATE AND $dt::DATE + $days
  AND (dt = $dt::DATE OR "timestamp" <= ($dt::DATE + 1)::TIMESTAMPTZ + $window)
GROUP BY dt
UNION ALL
SELECT 'join', 'product', dt, count(*), max(loaded_at)
FROM raw.product_events
WHERE dt BETWEEN $dt::DATE AND $dt::DATE + $days
  AND "timestamp" >= $dt::DATE::TIMESTAMPTZ
  AND "timestamp" <= ($dt::DATE + 1)::TIMESTAMPTZ + $window
GROUP BY dt
UNION ALL
SELECT 'checks', 'inference', dt, count(*), max(loaded_at)
FROM raw.inference_events
WHERE dt BETWEEN $dt::DATE - $days - 7 AND $dt::DATE
GROUP BY dt
UNION ALL
SELECT 'checks', 'product', dt, count(*), max(loaded_at)
FROM raw.product_events
WHERE dt = $dt::DATE
GROUP BY dt
ORDER BY ALL;
