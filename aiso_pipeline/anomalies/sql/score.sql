-- Robust baseline per model × feature × metric: the median of the trailing days before $dt and the MAD
-- (median absolute deviation) scaled by 1.4826, so that it estimates the standard deviation of normal data.
-- The scale is floored (an absolute floor, a share of the median, and the sampling noise: √median for counts,
-- √(p(1−p)/n) for rates over the day's n requests, 0.5/√n for ECE): a flat history would otherwise make any blip infinitely
-- significant. z = (value − median) / scale. With $weekly, only the same weekday counts as history.
INSERT INTO _anomaly_found BY NAME
WITH usable AS (
    -- outcome-based metrics compare only days whose attribution window has closed (later product events still
    -- raise successes and joins); rate metrics only days with enough volume to mean something
    SELECT o.*
    FROM _anomaly_obs o
    JOIN _anomaly_rules r ON r.metric = o.metric
    WHERE (o.window_closed OR NOT r.needs_closed_window)
      AND (o.requests >= $min_requests OR NOT r.volume_gated)
),
history AS (
    SELECT * FROM usable WHERE dt < $dt::DATE AND (NOT $weekly OR dayofweek(dt) = dayofweek($dt::DATE))
),
hist AS (
    SELECT model, feature, metric, count(*) AS n, median(value) AS med
    FROM history
    GROUP BY model, feature, metric
),
spread AS (
    SELECT u.model, u.feature, u.metric, median(abs(u.value - h.med)) AS mad
    FROM history u
    JOIN hist h ON h.model = u.model AND h.feature IS NOT DISTINCT FROM u.feature AND h.metric = u.metric
    GROUP BY u.model, u.feature, u.metric
),
scored AS (
    SELECT cur.dt, cur.model, cur.feature, cur.metric, cur.value, r.direction,
           h.med AS baseline, h.n AS history_days,
           greatest(1.4826 * s.mad, r.abs_floor, r.rel_floor * abs(h.med),
                    CASE r.noise
                        WHEN 'poisson' THEN sqrt(abs(h.med))
                        WHEN 'binomial' THEN sqrt(greatest(h.med * (1 - h.med), 0) / greatest(cur.requests, 1))
                        WHEN 'sqrt_n' THEN 0.5 / sqrt(greatest(cur.requests, 1))
                        ELSE 0 END) AS scale
    FROM usable cur
    JOIN hist h ON h.model = cur.model AND h.feature IS NOT DISTINCT FROM cur.feature AND h.metric = cur.metric
    JOIN spread s ON s.model = cur.model AND s.feature IS NOT DISTINCT FROM cur.feature AND s.metric = cur.metric
    JOIN _anomaly_rules r ON r.metric = cur.metric
    WHERE cur.dt = $dt::DATE
      AND h.n >= $min_history_days
),
z AS (
    SELECT *, (value - baseline) / scale AS z_score FROM scored
)
SELECT dt,
       CASE WHEN z_score > 0 THEN 'spike' ELSE 'drop' END AS kind,
       model, feature, metric, value, baseline,
       baseline + sign(z_score) * $warn_z * scale AS threshold,
       CASE WHEN abs(z_score) >= $critical_z THEN 'critical' ELSE 'warning' END AS severity,
       z_score, scale, history_days
FROM z
WHERE (z_score >= $warn_z AND direction IN ('up', 'both'))
   OR (z_score <= -$warn_z AND direction IN ('down', 'both'));
