-- Replace partition D of marts.joined_outcomes (run inside one transaction, after joined_attribute.sql).
DELETE FROM marts.joined_outcomes WHERE dt = $dt;

INSERT INTO marts.joined_outcomes BY NAME
SELECT i.request_id, i.dt, i."timestamp", i.model, i.feature, i.user_id, i.experiment_id, i.variant, i.status,
       i.is_fallback, i.latency_ms, i.input_tokens, i.output_tokens, i.cost_usd,
       1.0 / coalesce(i.sample_rate, 1.0) AS weight,
       o.request_id IS NOT NULL AS has_outcome,
       coalesce(o.events_attributed, 0) AS events_attributed,
       coalesce(o.success, false) AS success,
       coalesce(o.converted, false) AS converted,
       coalesce(o.revenue, 0) AS revenue,
       o.first_outcome_at,
       $window_closed AS window_closed,  -- window_closed.sql
       current_timestamp AS computed_at
FROM raw.inference_events AS i
LEFT JOIN _jo_outcomes AS o ON o.request_id = i.request_id
WHERE i.dt = $dt;
