-- Slice parity (marts.slice_metrics): every slice the monitoring marts marked `worse` (its success rate below the
-- rest of its model × feature by more than the margin, significantly after Benjamini-Hochberg) is an anomaly.
-- metric names the slice; value is its success rate, baseline the rest's, threshold the rest's minus the margin.
-- Critical when the gap is at least three margins.
INSERT INTO _anomaly_found BY NAME
SELECT dt, 'parity' AS kind, model, feature,
       'success_rate[' || slice_key || '=' || slice_value || ']' AS metric,
       success_rate AS value, rest_success_rate AS baseline, rest_success_rate - margin AS threshold,
       CASE WHEN rest_success_rate - success_rate >= 3 * greatest(margin, 0.01) THEN 'critical' ELSE 'warning' END
           AS severity,
       NULL AS z_score, NULL AS scale, NULL AS history_days
FROM marts.slice_metrics
WHERE dt = $dt::DATE
  AND worse;
