-- Exposure = a user's first inference carrying the experiment's id and a variant, within [start, window_end].
-- Needs _xp_config (experiment_id, start_dt, window_end, ...). One group per experiment x user; the NULL
-- user_id group counts the tagged rows that have no unit.
CREATE OR REPLACE TEMP TABLE _xp_exposures AS
SELECT j.experiment_id, j.user_id,
       min(j.variant) AS variant,                 -- the only variant of every user that is kept
       min(j."timestamp") FILTER (WHERE j.variant IS NOT NULL) AS exposed_at,
       -- 0 = no variant, 1 = one, 2 = more than one (min <> max is much cheaper than count(DISTINCT))
       CASE WHEN min(j.variant) IS NULL THEN 0 WHEN min(j.variant) = max(j.variant) THEN 1 ELSE 2 END AS variants,
       count(*) AS tagged_rows,
       count(*) FILTER (WHERE j.variant IS NULL) AS rows_without_variant
FROM marts.joined_outcomes AS j
JOIN _xp_config AS c ON c.experiment_id = j.experiment_id
WHERE j.dt BETWEEN $first_start AND $dt
  AND j.dt BETWEEN c.start_dt AND c.window_end
GROUP BY j.experiment_id, j.user_id;

-- Units: users with exactly one variant. Users seen in two or more variants are excluded (and counted below).
-- unit_id: a dense integer key, so the per-user aggregation groups on one integer instead of two strings.
CREATE OR REPLACE TEMP TABLE _xp_units AS
SELECT row_number() OVER () AS unit_id, experiment_id, user_id, variant, exposed_at
FROM _xp_exposures
WHERE user_id IS NOT NULL AND variants = 1;

CREATE OR REPLACE TEMP TABLE _xp_exclusions AS
SELECT experiment_id,
       count(*) FILTER (WHERE user_id IS NOT NULL AND variants = 1) AS users,
       count(*) FILTER (WHERE user_id IS NOT NULL AND variants > 1) AS mixed_variant_users,
       coalesce(sum(tagged_rows) FILTER (WHERE user_id IS NULL), 0) AS rows_without_user,
       coalesce(sum(rows_without_variant), 0) AS rows_without_variant
FROM _xp_exposures
GROUP BY experiment_id;

DROP TABLE _xp_exposures;
