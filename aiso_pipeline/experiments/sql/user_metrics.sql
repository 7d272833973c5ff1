-- Per-user measures from marts.joined_outcomes (declared in experiments/metrics.yaml; the slots in double braces are filled in
-- by experiments/metrics.py): post = from the exposure to the end of window_end's day, pre = the 14 days before
-- the exposure (CUPED; only for experiments with cuped on). Rows are the user's inferences on the experiment's
-- features (_xp_scope: experiment_id, feature).
--
-- Units (users) are never weighted; the measures say what is (request-level quantities by `weight`).
-- Unpriced rows (cost_usd NULL) are counted in unpriced_rows.
-- post * value sums rather than FILTER clauses, and one integer group key: this is the heaviest step.
CREATE OR REPLACE TEMP TABLE _xp_user AS
WITH scoped AS (
    SELECT u.unit_id, u.user_id, u.exposed_at, c.window_end, c.cuped, s.feature
    FROM _xp_units AS u
    JOIN _xp_config AS c USING (experiment_id)
    JOIN _xp_scope AS s USING (experiment_id)
),
facts AS (
    SELECT dt, "timestamp", user_id, feature, cost_usd IS NULL AS unpriced, NOT window_closed AS open,
           {{measure_values}}
    FROM marts.joined_outcomes
    WHERE dt BETWEEN $pre_from AND $dt
),
rows AS (
    SELECT s.unit_id, (j."timestamp" >= s.exposed_at)::INT AS post, j.unpriced, j.open, {{measure_columns}}
    FROM facts AS j
    JOIN scoped AS s ON j.user_id = s.user_id AND j.feature = s.feature
    WHERE j.dt <= s.window_end
      AND j."timestamp" >= s.exposed_at - INTERVAL 14 DAY
      AND (s.cuped OR j."timestamp" >= s.exposed_at)
)
SELECT unit_id,
       {{aggregates}},
       min(post) = 0 AS has_pre,
       sum(post) AS post_rows,
       sum(post * unpriced::INT) AS unpriced_rows,
       sum(post * open::INT) AS open_rows
FROM rows
GROUP BY unit_id;
