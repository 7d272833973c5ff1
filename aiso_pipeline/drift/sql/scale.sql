-- Per model, each numeric column's reference count and standard deviation. They only size the grid histogram.sql
-- counts on (the statistics themselves come from the full data; a poor estimate only costs a recount), so the
-- first call reads a ~1% block sample (sample: the block_sample fragment) of the models compared; the models the
-- sample misses are then read in full (sample empty). models lists bound parameters ($rm0, ... / $scale_m0, ...).
SELECT model{aggregates}
FROM (
    SELECT model{columns}
    FROM (
        SELECT model{base}{features}
        FROM {source} {sample}
        WHERE dt BETWEEN $ref_start AND $ref_end AND model IN ({models})
    ) AS sampled
) AS s
GROUP BY model
