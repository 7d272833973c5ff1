-- Replace partition D of marts.outcome_coverage from marts.joined_outcomes (run inside one transaction).
-- join_rate = weighted share of inferences with an attributed product event (CONTRACT section 5).
DELETE FROM marts.outcome_coverage WHERE dt = $dt;

INSERT INTO marts.outcome_coverage BY NAME
SELECT dt, model, feature,
       sum(weight) AS inferences,
       coalesce(sum(weight) FILTER (WHERE has_outcome), 0) AS joined,
       coalesce(sum(weight) FILTER (WHERE has_outcome), 0) / nullif(sum(weight), 0) AS join_rate,
       count(*) AS inference_rows,
       count(*) FILTER (WHERE has_outcome) AS joined_rows,
       bool_and(window_closed) AS window_closed,
       current_timestamp AS computed_at
FROM marts.joined_outcomes
WHERE dt = $dt
GROUP BY dt, model, feature;

-- The join-rate target analysts are held to, mirrored in quality.check_results beside the Dagster check.
DELETE FROM quality.check_results
WHERE dt = $dt AND asset = 'marts.outcome_coverage' AND check_name = 'outcome_join_rate';

INSERT INTO quality.check_results BY NAME
SELECT $dt::DATE AS dt, 'marts.outcome_coverage' AS asset, 'outcome_join_rate' AS check_name,
       coalesce(min(join_rate) >= $min_join_rate, true) AS passed, 'WARN' AS severity,
       min(join_rate) AS observed_value, printf('>= %g for every model x feature', $min_join_rate) AS threshold,
       printf('%d of %d model x feature groups below; worst: %s', count(*) FILTER (WHERE join_rate < $min_join_rate),
              count(*), arg_min(model || ' / ' || coalesce(feature, '') || ' ' || round(join_rate, 4), join_rate))
           AS details,
       current_timestamp AS checked_at
FROM marts.outcome_coverage
WHERE dt = $dt;
