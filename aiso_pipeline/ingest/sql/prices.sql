-- The price table (CONTRACT section 4) as validity intervals per model of this batch, for inference_write.sql:
-- regexes run once per distinct model, not once per row.
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
