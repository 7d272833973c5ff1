-- The scorecard's figures for day $dt, one row per model (the models with calls that day), from the day's marts:
-- cost_daily (rolled up over features: priced successes = cost / cost per success), outcome_coverage, calibration,
-- slice_metrics, anomalies (drift episodes too) and the day's calls for the exact weighted p95 latency and the
-- experiments running on the model. Trends are computed in Python against marts.scorecard's trailing days.
CREATE OR REPLACE TEMP TABLE _sc_figures AS
WITH cost AS (
    SELECT model, sum(requests) AS requests, sum(cost_usd) AS cost_usd,
           sum(cost_usd) / nullif(sum(cost_usd / nullif(cost_per_success, 0)), 0) AS cost_per_success,
           sum(cost_usd) / nullif(sum(cost_usd / nullif(cost_per_conversion, 0)), 0) AS cost_per_conversion,
           sum(error_rate * requests) / nullif(sum(requests), 0) AS error_rate,
           sum(fallback_rate * requests) / nullif(sum(requests), 0) AS fallback_rate,
           bool_and(window_closed) AS window_closed
    FROM marts.cost_daily
    WHERE dt = $dt::DATE
    GROUP BY model
),
coverage AS (
    SELECT model, sum(joined) / nullif(sum(inferences), 0) AS join_rate
    FROM marts.outcome_coverage
    WHERE dt = $dt::DATE
    GROUP BY model
),
feature_coverage AS (
    -- the least-joined feature of each model, among those with at least 5% of its calls
    SELECT model, min(join_rate) AS feature_join_rate, arg_min(feature, join_rate) AS worst_join_feature
    FROM (SELECT model, coalesce(feature, '(none)') AS feature, sum(joined) / nullif(sum(inferences), 0) AS join_rate,
                 sum(inferences) / nullif(sum(sum(inferences)) OVER (PARTITION BY model), 0) AS share
          FROM marts.outcome_coverage
          WHERE dt = $dt::DATE
          GROUP BY model, coalesce(feature, '(none)'))
    WHERE share >= 0.05
    GROUP BY model
),
calibration AS (
    SELECT model, sum(n * ece) / nullif(sum(n), 0) AS ece
    FROM marts.calibration
    WHERE dt = $dt::DATE
    GROUP BY model
),
slices AS (
    -- the worst tested slice, and the worst of those significantly worse than their model (BH over the day,
    -- beyond the margin; 0 when none is): the check is judged on the latter, so noise alone never fails it
    SELECT model, min(gap_vs_model) AS worst_slice_gap,
           coalesce(min(gap_vs_model) FILTER (WHERE worse), 0) AS worse_slice_gap,
           arg_min(coalesce(feature, '') || ' ' || slice_key || '=' || slice_value, gap_vs_model) AS worst_slice,
           count(*) FILTER (WHERE worse) AS worse_slices
    FROM marts.slice_metrics
    WHERE dt = $dt::DATE AND tested
    GROUP BY model
),
anomalies AS (
    SELECT model, count(*) AS open_anomalies, count(*) FILTER (WHERE severity = 'critical') AS critical_anomalies
    FROM marts.anomalies
    WHERE dt = $dt::DATE
    GROUP BY model
),
episodes AS (
    -- the latest drift episode that started within the last 7 days, and its detection delay
    SELECT model, arg_max(detection_delay_hours, episode_start) AS drift_detect_hours,
           max(episode_start) AS drift_episode_start
    FROM marts.anomalies
    WHERE kind = 'drift' AND dt BETWEEN $dt::DATE - 6 AND $dt::DATE AND episode_start = dt
    GROUP BY model
),
counts AS (
    -- effective numbers of successes and conversions (Kish: (sum w)^2 / sum w^2), the noise of the cost trends
    SELECT model,
           power(sum(weight) FILTER (WHERE success), 2) / nullif(sum(weight * weight) FILTER (WHERE success), 0)
               AS successes_eff,
           power(sum(weight) FILTER (WHERE converted), 2) / nullif(sum(weight * weight) FILTER (WHERE converted), 0)
               AS conversions_eff
    FROM marts.joined_outcomes
    WHERE dt = $dt::DATE
    GROUP BY model
),
latency AS (
    SELECT model, latency_ms, sum(weight) AS weight
    FROM marts.joined_outcomes
    WHERE dt = $dt::DATE AND latency_ms IS NOT NULL
    GROUP BY model, latency_ms
),
p95 AS (
    -- the inverse of the weighted empirical CDF, as marts.cost_daily's percentiles, over all of the model's calls
    SELECT model, min(latency_ms) FILTER (WHERE cum >= 0.95 * total * (1 - 1e-9)) AS latency_p95_ms
    FROM (SELECT *, sum(weight) OVER (PARTITION BY model ORDER BY latency_ms
                                      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum,
                    sum(weight) OVER (PARTITION BY model) AS total
          FROM latency)
    GROUP BY model
)
SELECT c.model, c.requests, c.cost_usd, c.window_closed, v.join_rate, f.feature_join_rate, f.worst_join_feature,
       c.cost_per_success, c.cost_per_conversion,
       p.latency_p95_ms, c.error_rate, c.fallback_rate, k.ece, s.worst_slice_gap, s.worse_slice_gap, s.worst_slice,
       coalesce(s.worse_slices, 0) AS worse_slices, coalesce(a.open_anomalies, 0) AS open_anomalies,
       coalesce(a.critical_anomalies, 0) AS critical_anomalies, e.drift_detect_hours, e.drift_episode_start,
       coalesce(n.successes_eff, 0) AS successes_eff, coalesce(n.conversions_eff, 0) AS conversions_eff
FROM cost AS c
LEFT JOIN coverage AS v USING (model)
LEFT JOIN feature_coverage AS f USING (model)
LEFT JOIN calibration AS k USING (model)
LEFT JOIN slices AS s USING (model)
LEFT JOIN anomalies AS a USING (model)
LEFT JOIN episodes AS e USING (model)
LEFT JOIN p95 AS p USING (model)
LEFT JOIN counts AS n USING (model);

-- Experiments on each model that day (kept in marts.model_experiments by scorecard.py), and those still running
-- with their primary metric's readout (power in Python).
CREATE OR REPLACE TEMP TABLE _sc_model_experiments AS
SELECT DISTINCT $dt::DATE AS dt, model, experiment_id
FROM marts.joined_outcomes
WHERE dt = $dt::DATE AND experiment_id IS NOT NULL;

CREATE OR REPLACE TEMP TABLE _sc_experiments AS
SELECT r.model, x.experiment_id, x.variant, x.mde, x.target_mde, x.alpha, x.decision
FROM _sc_model_experiments AS r
JOIN marts.experiment_readouts AS x ON x.experiment_id = r.experiment_id
WHERE x.dt = $dt::DATE AND x.metric_role = 'primary' AND x.decision = 'keep_running';
