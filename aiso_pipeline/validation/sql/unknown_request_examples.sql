-- Product events of $dt naming a request_id that no inference of $dt - $lookback_days .. $dt has.
SELECT p.message_id, p.request_id, p.event, p."timestamp"::VARCHAR AS "timestamp"
FROM raw.product_events AS p
WHERE p.dt = $dt::DATE AND p.request_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM raw.inference_events AS i
                  WHERE i.request_id = p.request_id
                    AND i.dt BETWEEN $dt::DATE - $lookback_days::INTEGER AND $dt::DATE)
ORDER BY p."timestamp", p.message_id
LIMIT $n;
