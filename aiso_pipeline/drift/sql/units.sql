-- Per model and side: rows and independent units (users; a call without a user is its own unit), for the design
-- effect of the shift tests: a user's calls share their language, their prompt style, ..., so n calls from u users
-- carry about u independent observations, not n. HyperLogLog count (approx_count_distinct, ~2% error; Spark has
-- the same function). Placeholders as in rows.sql.
SELECT model, is_current, count(*) AS rows, approx_count_distinct(unit) AS units
FROM (
    SELECT model, TRUE AS is_current, coalesce(user_id, request_id) AS unit
    FROM {source}
    WHERE dt = $dt
    UNION ALL
    SELECT model, FALSE AS is_current, coalesce(user_id, request_id) AS unit
    FROM {source}
    WHERE dt BETWEEN $ref_start AND $ref_end
      AND model IN ({ref_models})
) AS tagged
GROUP BY model, is_current
