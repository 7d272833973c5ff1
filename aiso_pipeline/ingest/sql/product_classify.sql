-- Decide each parsed product row's fate (loaded / duplicate / quarantined), as for inferences.
CREATE OR REPLACE TEMP TABLE _classified AS
SELECT r.*,
       CASE WHEN r.reason IS NOT NULL THEN 'quarantined'
            WHEN r.key_rank > 1 THEN 'duplicate'
            WHEN r.dedup_key IN (SELECT dedup_key FROM _seen) THEN 'duplicate'  -- ingest/sql/seen.sql
            ELSE 'loaded' END AS outcome,
       CAST(NULL AS BOOLEAN) AS unpriced
FROM _ranked AS r;  -- ingest/sql/rank.sql
