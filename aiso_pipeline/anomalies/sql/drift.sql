-- Dataset drift (marts.drift_summary, per model): the drift assets already decided; every drifted day is an
-- anomaly. baseline = the median share of drifted columns over the trailing days, for context.
INSERT INTO _anomaly_found BY NAME
WITH hist AS (
    SELECT model, count(*) AS n, median(share_drifted) AS med
    FROM marts.drift_summary
    WHERE dt BETWEEN $dt::DATE - $lookback_days::INTEGER AND $dt::DATE - 1
    GROUP BY model
)
SELECT cur.dt, 'drift' AS kind, cur.model, NULL AS feature, 'dataset_drift' AS metric,
       cur.share_drifted AS value, h.med AS baseline, NULL AS threshold,
       CASE WHEN cur.share_drifted >= $drift_critical_share THEN 'critical' ELSE 'warning' END AS severity,
       NULL AS z_score, NULL AS scale, coalesce(h.n, 0) AS history_days
FROM marts.drift_summary cur
LEFT JOIN hist h ON h.model = cur.model
WHERE cur.dt = $dt::DATE
  AND cur.dataset_drift;
