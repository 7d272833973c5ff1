-- Decide each parsed inference row's fate (loaded / duplicate / quarantined) and price it (CONTRACT section 4).

-- Price intervals per model seen in this batch: regexes run once per distinct model, not once per row.
CREATE OR REPLACE TEMP TABLE _price_intervals AS
WITH models AS (
    SELECT DISTINCT model FROM _parsed WHERE reason IS NULL
), matches AS (
    SELECT m.model, p.valid_from, p.input_per_mtok, p.output_per_mtok, p.cached_input_per_mtok, p.row_number,
           row_number() OVER (PARTITION BY m.model, p.valid_from ORDER BY p.row_number) AS tie_rank
    FROM models AS m
    JOIN _prices AS p ON regexp_full_match(m.model, p.model_pattern)
)
SELECT model, valid_from, lead(valid_from) OVER (PARTITION BY model ORDER BY valid_from) AS valid_to,
       input_per_mtok, output_per_mtok, cached_input_per_mtok
FROM matches
WHERE tie_rank = 1;  -- two patterns with the same valid_from: the row listed first wins

CREATE OR REPLACE TEMP TABLE _classified AS
SELECT r.*,
       CASE WHEN r.reason IS NOT NULL THEN 'quarantined'
            WHEN r.key_rank > 1 THEN 'duplicate'
            WHEN r.dedup_key IN (SELECT dedup_key FROM _seen) THEN 'duplicate'  -- ingest/sql/seen.sql
            ELSE 'loaded' END AS outcome,
       coalesce(r.reported_cost,
                ((r.input_tokens - r.cached_input_tokens) * pi.input_per_mtok
                 + r.cached_input_tokens * pi.cached_input_per_mtok
                 + r.output_tokens * pi.output_per_mtok) / 1e6) AS cost_usd,
       CASE WHEN r.reported_cost IS NOT NULL THEN 'reported'
            WHEN pi.model IS NOT NULL THEN 'price_table' END AS cost_source,
       r.reported_cost IS NULL AND pi.model IS NULL AS unpriced
FROM _ranked AS r  -- ingest/sql/rank.sql
LEFT JOIN _price_intervals AS pi
       ON r.model = pi.model AND r."timestamp" >= pi.valid_from
      AND (pi.valid_to IS NULL OR r."timestamp" < pi.valid_to);
