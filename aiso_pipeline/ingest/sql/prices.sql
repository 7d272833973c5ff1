-- The price table (CONTRACT section 4) as validity intervals per model of this batch, for inference_write.sql:
-- regexes run once per distinct model, not once per row. A model the table does not name as written is looked up
-- by its candidates (ingest/prices.py: without a provider prefix or a snapshot suffix); the best-ranked candidate
-- that any pattern matches prices it.
CREATE OR REPLACE TEMP TABLE _price_intervals AS
WITH candidate_matches AS (
    SELECT c.model, c.rank, p.valid_from, p.input_per_mtok, p.output_per_mtok, p.cached_input_per_mtok, p.row_number
    FROM _model_candidates AS c
    JOIN _prices AS p ON regexp_full_match(c.candidate, p.model_pattern)
), best AS (
    SELECT model, min(rank) AS rank FROM candidate_matches GROUP BY model
), matches AS (
    SELECT m.model, m.valid_from, m.input_per_mtok, m.output_per_mtok, m.cached_input_per_mtok,
           row_number() OVER (PARTITION BY m.model, m.valid_from ORDER BY m.row_number) AS tie_rank
    FROM candidate_matches AS m
    JOIN best AS b ON m.model = b.model AND m.rank = b.rank
)
SELECT model, valid_from, lead(valid_from) OVER (PARTITION BY model ORDER BY valid_from) AS valid_to,
       input_per_mtok, output_per_mtok, cached_input_per_mtok
FROM matches
WHERE tie_rank = 1;  -- two patterns with the same valid_from: the row listed first wins
