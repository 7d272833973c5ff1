-- Per model and side: the design effect of the shift tests. A user's calls share their language, their prompt
-- style, ..., so n calls from users with m_u calls each carry about (sum m_u)^2 / sum m_u^2 independent
-- observations (Kish's effective size when a user's calls are alike): deff = sum m_u^2 / sum m_u, the
-- call-weighted mean calls per user. A call without a user is its own unit. Placeholders as in rows.sql.
SELECT model, is_current, sum(calls * calls) / sum(calls) AS deff
FROM (
    SELECT model, is_current, count(*) AS calls
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
    GROUP BY model, is_current, unit
) AS per_unit
GROUP BY model, is_current
