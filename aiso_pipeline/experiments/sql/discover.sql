-- Experiments seen on inferences up to the as-of day: first exposure day, variants and features.
-- Scans experiment_id, variant, user_id, feature and dt of every row up to $dt (cost grows with history).
SELECT experiment_id,
       min(dt) FILTER (WHERE variant IS NOT NULL AND user_id IS NOT NULL) AS first_exposure_dt,
       list(DISTINCT variant ORDER BY variant) FILTER (WHERE variant IS NOT NULL) AS variants,
       list(DISTINCT feature ORDER BY feature) FILTER (WHERE feature IS NOT NULL) AS features
FROM marts.joined_outcomes
WHERE dt <= $dt AND experiment_id IS NOT NULL
GROUP BY experiment_id
ORDER BY experiment_id;
