-- Replace partition D of marts.joined_outcomes (run inside one transaction, after joined_attribute.sql).
DELETE FROM marts.joined_outcomes WHERE dt = $dt;

INSERT INTO marts.joined_outcomes BY NAME
WITH closed AS (
    -- window_closed: the product data loaded so far reaches past the window of the day's last possible
    -- inference (an event at or after end of D + window), or a product partition after D+k+1 exists. Bounded
    -- scans only, so a backfill of an old day does not read everything that came after it.
    SELECT coalesce(max("timestamp") >= ($dt::DATE + 1)::TIMESTAMPTZ + $window, false)
           OR EXISTS (SELECT 1 FROM raw.product_events WHERE dt > $dt::DATE + $days + 1) AS window_closed
    FROM raw.product_events
    WHERE dt BETWEEN $dt::DATE + $days AND $dt::DATE + $days + 1
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
