-- Both streams' dedup order within a batch: among valid rows with the same key, the first by file name, then line.
CREATE OR REPLACE TEMP VIEW _ranked AS
SELECT p.*,
       CASE WHEN p.reason IS NULL
            THEN row_number() OVER (PARTITION BY p.dedup_key, p.reason IS NULL ORDER BY p.source_file, p.line_number)
       END AS key_rank
FROM _parsed AS p;
