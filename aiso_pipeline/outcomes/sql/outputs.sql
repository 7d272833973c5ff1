-- Whether day D's outputs are still there, as a recompute skipped for unchanged inputs would leave them: one
-- joined row per loaded inference of D, and both attribution checks. Portable SQL.
SELECT (SELECT count(*) FROM marts.joined_outcomes WHERE dt = $dt)
       = (SELECT count(*) FROM raw.inference_events WHERE dt = $dt) AS joined_complete,
       (SELECT count(DISTINCT check_name) FROM quality.check_results
        WHERE dt = $dt AND asset = 'marts.joined_outcomes'
          AND check_name IN ('outcomes_unknown_request_id', 'outcomes_unattributed_events')) = 2 AS checks_complete;
