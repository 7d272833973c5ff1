-- Per model, each numeric column's reference count and standard deviation. They only size the grid histogram.sql
-- counts on (the statistics themselves come from the full data; a poor estimate only costs a recount), so the
-- first call reads a ~1% block sample ({sample} is the block_sample fragment); models the sample misses are read
-- in full in a second call ({sample} empty, {model_filter} restricting the scan to them: bound parameters).
SELECT model{aggregates}
FROM (
    SELECT model{columns}
    FROM (
        SELECT model{base}{features}
        FROM {source} {sample}
        WHERE dt BETWEEN $ref_start AND $ref_end{model_filter}
    ) AS sampled
) AS s
GROUP BY model
