-- Decide each parsed product row's fate (loaded / duplicate / quarantined), as for inferences.
CREATE OR REPLACE TEMP TABLE _classified AS
WITH ranked AS (
    SELECT p.*,
           CASE WHEN p.reason IS NULL
                THEN row_number() OVER (PARTITION BY p.dedup_key, p.reason IS NULL ORDER BY p.source_file, p.line_number)
           END AS key_rank
    FROM _parsed AS p
)
SELECT r.*,
       CASE WHEN r.reason IS NOT NULL THEN 'quarantined'
            WHEN r.key_rank > 1 THEN 'duplicate'
            WHEN r.dedup_key IN (SELECT message_id FROM raw.product_events WHERE dt <> $dt) THEN 'duplicate'
            ELSE 'loaded' END AS outcome,
       CAST(NULL AS BOOLEAN) AS unpriced
FROM ranked AS r;
