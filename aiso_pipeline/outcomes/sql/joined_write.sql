-- Replace partition D of marts.joined_outcomes (run inside one transaction, after joined_attribute.sql).
-- window_closed: product data loaded so far reaches past the window of the day's last possible inference, i.e.
-- some event at or after end of D + window exists (in partitions D+k.., so only those are scanned).
DELETE FROM marts.joined_outcomes WHERE dt = $dt;

INSERT INTO marts.joined_outcomes BY NAME
WITH closed AS (
    SELECT coalesce(max("timestamp") >= ($dt::DATE + 1)::TIMESTAMPTZ + $window, false) AS window_closed
    FROM raw.product_events
    WHERE dt >= $dt::DATE + $days
)
SELECT i.request_id, i.dt, i."timestamp", i.model, i.feature, i.user_id, i.experiment_id, i.variant, i.status,
       i.is_fallback, i.latency_ms, i.input_tokens, i.output_tokens, i.cost_usd,
       1.0 / coalesce(i.sample_rate, 1.0) AS weight,
       o.request_id IS NOT NULL AS has_outcome,
       coalesce(o.events_attributed, 0) AS events_attributed,
       coalesce(o.success, false) AS success,
       coalesce(o.converted, false) AS converted,
       coalesce(o.revenue, 0) AS revenue,
       o.first_outcome_at,
       closed.window_closed,
       current_timestamp AS computed_at
FROM raw.inference_events AS i
LEFT JOIN _jo_outcomes AS o ON o.request_id = i.request_id
CROSS JOIN closed
WHERE i.dt = $dt;
