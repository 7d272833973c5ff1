-- Drift (marts.drift_metrics via _anomaly_drift_metrics, marts.drift_summary): the drift assets decided with Evidently's default tests.
-- A drifted column is an anomaly when its shift is also more than sampling noise for the sample sizes involved
-- (shift_p_value < $drift_alert_alpha: two-sample KS or chi-square homogeneity, chosen by simulation in
-- benchmarks/drift_alerts.py) and its weight (reference/monitoring.yaml: drift_weights, default 1) is above 0.
-- score = weight x how far past its threshold (statistic / threshold for distances, log p / log threshold for
-- tests: 1 at the threshold); critical from $drift_critical_score. Dataset drift stays one critical row per model,
-- when at least $drift_critical_share of its checked columns drifted significantly (Evidently's dataset drift on
-- a small model is mostly sampling noise); value = that share, baseline = the trailing median share drifted.
--
-- Episodes are per model: a model with drift anomalies within the last $drift_episode_days days (the drift
-- reference window, which now holds the drifted days) continues that episode, whichever columns drift now (an
-- episode spreads over columns as the reference fills with drifted days): same episode_start, same detection
-- delay, and the alert sensor does not alert it again. detection_delay_hours (hours from the end of the episode's first
-- partition to its first detection) is filled in by write.sql for a new episode.
INSERT INTO _anomaly_found BY NAME
WITH columns AS (
    SELECT m.dt, m.model, 'drift:' || m.column_name AS metric, m.statistic AS value, m.threshold,
           coalesce(w.weight, 1.0) * CASE
               WHEN m.method IN ('wasserstein', 'jensenshannon') THEN m.statistic / m.threshold
               ELSE ln(greatest(m.statistic, 1e-300)) / ln(m.threshold) END AS score
    FROM _anomaly_drift_metrics AS m  -- the day's drifted rows of marts.drift_metrics
    LEFT JOIN _anomaly_drift_weights AS w ON w.column_name = m.column_name
    WHERE m.dt = $dt::DATE
      AND m.drifted
      AND m.shift_p_value < $drift_alert_alpha
      AND coalesce(w.weight, 1.0) > 0
),
significant AS (
    SELECT model, count(*) AS n
    FROM _anomaly_drift_metrics
    WHERE dt = $dt::DATE AND drifted AND shift_p_value < $drift_alert_alpha
    GROUP BY model
),
hist AS (
    SELECT model, count(*) AS n, median(share_drifted) AS med
    FROM marts.drift_summary
    WHERE dt BETWEEN $dt::DATE - $lookback_days::INTEGER AND $dt::DATE - 1
    GROUP BY model
),
found AS (
    SELECT dt, model, metric, value, NULL::DOUBLE AS baseline, threshold,
           CASE WHEN score >= $drift_critical_score THEN 'critical' ELSE 'warning' END AS severity, score,
           NULL::INTEGER AS history_days
    FROM columns
    UNION ALL
    SELECT cur.dt, cur.model, 'dataset_drift', sig.n / cur.columns_checked, h.med, $drift_critical_share,
           'critical', NULL, coalesce(h.n, 0)
    FROM marts.drift_summary AS cur
    JOIN significant AS sig ON sig.model = cur.model
    LEFT JOIN hist AS h ON h.model = cur.model
    WHERE cur.dt = $dt::DATE
      AND cur.columns_checked > 0
      AND sig.n / cur.columns_checked >= $drift_critical_share
),
open_episodes AS (
    SELECT model, min(coalesce(episode_start, dt)) AS episode_start
    FROM marts.anomalies
    WHERE kind = 'drift'
      AND dt BETWEEN $dt::DATE - $drift_episode_days::INTEGER AND $dt::DATE - 1
    GROUP BY model
),
first_detection AS (
    SELECT model, episode_start, max(detection_delay_hours) AS detection_delay_hours
    FROM marts.anomalies
    WHERE kind = 'drift' AND dt = episode_start
    GROUP BY model, episode_start
)
SELECT f.dt, 'drift' AS kind, f.model, NULL AS feature, f.metric, f.value, f.baseline, f.threshold, f.severity,
       NULL AS z_score, NULL AS scale, f.history_days, f.score,
       coalesce(o.episode_start, f.dt) AS episode_start, d.detection_delay_hours
FROM found AS f
LEFT JOIN open_episodes AS o ON o.model = f.model
LEFT JOIN first_detection AS d ON d.model = f.model AND d.episode_start = o.episode_start;
