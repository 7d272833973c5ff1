-- Per-user metrics from marts.joined_outcomes: post = from the exposure to the end of window_end's day,
-- pre = the 14 days before the exposure (CUPED; only for experiments with cuped on). Rows are the user's
-- inferences on the experiment's features (_xp_scope: experiment_id, feature).
--
-- Weighting (each row stands for `weight` = 1/sample_rate calls): request-level quantities are weighted sums
-- (cost_per_user is the user's estimated total cost; success/error/latency ratios are weighted over requests).
-- Units (users) are never weighted, and neither are conversion and revenue: they come from product events,
-- which are not sampled, attributed to whichever logged inference they follow.
-- Unpriced rows (cost_usd NULL) add nothing to cost and are counted in unpriced_rows.
CREATE OR REPLACE TEMP TABLE _xp_user AS
WITH scoped AS (
    SELECT u.experiment_id, u.user_id, u.exposed_at, c.window_end, c.cuped, s.feature
    FROM _xp_units AS u
    JOIN _xp_config AS c USING (experiment_id)
    JOIN _xp_scope AS s USING (experiment_id)
),
rows AS (
    SELECT s.experiment_id, s.user_id, j."timestamp" >= s.exposed_at AS post,
           j.weight, j.converted, j.revenue, j.cost_usd, j.success, j.status, j.latency_ms, j.window_closed
    FROM marts.joined_outcomes AS j
    JOIN scoped AS s ON j.user_id = s.user_id AND j.feature = s.feature
    WHERE j.dt BETWEEN $pre_from AND $dt
      AND j.dt <= s.window_end
      AND j."timestamp" >= s.exposed_at - INTERVAL 14 DAY
      AND (s.cuped OR j."timestamp" >= s.exposed_at)
)
SELECT experiment_id, user_id,
       coalesce(max(converted::INT) FILTER (WHERE post), 0)::DOUBLE AS conversion_rate,
       coalesce(sum(revenue) FILTER (WHERE post), 0) AS revenue_per_user,
       coalesce(sum(weight * cost_usd) FILTER (WHERE post), 0) AS cost_per_user,
       coalesce(sum(weight) FILTER (WHERE post), 0) AS requests,
       coalesce(sum(weight * success::INT) FILTER (WHERE post), 0) AS successes,
       coalesce(sum(weight * (status IN ('error', 'timeout'))::INT) FILTER (WHERE post), 0) AS errors,
       coalesce(sum(weight * latency_ms) FILTER (WHERE post AND latency_ms IS NOT NULL), 0) AS latency_num,
       coalesce(sum(weight) FILTER (WHERE post AND latency_ms IS NOT NULL), 0) AS latency_den,
       coalesce(max(converted::INT) FILTER (WHERE NOT post), 0)::DOUBLE AS conversion_rate_pre,
       coalesce(sum(revenue) FILTER (WHERE NOT post), 0) AS revenue_per_user_pre,
       coalesce(sum(weight * cost_usd) FILTER (WHERE NOT post), 0) AS cost_per_user_pre,
       count(*) FILTER (WHERE NOT post) > 0 AS has_pre,
       count(*) FILTER (WHERE post) AS post_rows,
       count(*) FILTER (WHERE post AND cost_usd IS NULL) AS unpriced_rows,
       count(*) FILTER (WHERE post AND NOT window_closed) AS open_rows
FROM rows
GROUP BY experiment_id, user_id;
