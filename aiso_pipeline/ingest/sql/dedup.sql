-- Valid rows of this batch (_parsed) not to load because their dedup key is already taken (CONTRACT section 4):
-- by an earlier row of the batch (the first by file name, then line and record, wins) or by a row in another partition
-- already loaded. The stream's parse step defines _history (dedup_key, key_hash, dt). DuckDB-specific: hash().

-- One pass over the batch's keys; only keys that occur more than once are ranked.
CREATE OR REPLACE TEMP TABLE _batch_keys AS
SELECT dedup_key, hash(dedup_key) AS key_hash, count(*) AS n
FROM _parsed
WHERE reason IS NULL AND skip_reason IS NULL
GROUP BY dedup_key;

-- A pass over every other partition's 8-byte key_hash (warehouse/sql/key_hashes.sql) finds the days where a hash
-- matches; key strings are compared only in those days (usually none), so history costs a small 8-byte scan.
CREATE OR REPLACE TEMP TABLE _seen AS
SELECT DISTINCT h.dedup_key
FROM _history AS h
WHERE h.dt IN (SELECT DISTINCT dt FROM _history WHERE dt <> $dt AND key_hash IN (SELECT key_hash FROM _batch_keys))
  AND h.dt <> $dt
  AND h.dedup_key IN (SELECT dedup_key FROM _batch_keys);

CREATE OR REPLACE TEMP TABLE _duplicates AS
SELECT source_file, line_number, record_number
FROM (
    SELECT source_file, line_number, record_number,
           row_number() OVER (PARTITION BY dedup_key ORDER BY source_file, line_number, record_number) AS key_rank
    FROM _parsed
    WHERE reason IS NULL AND skip_reason IS NULL AND dedup_key IN (SELECT dedup_key FROM _batch_keys WHERE n > 1)
)
WHERE key_rank > 1
UNION
SELECT source_file, line_number, record_number
FROM _parsed
WHERE reason IS NULL AND skip_reason IS NULL AND dedup_key IN (SELECT dedup_key FROM _seen);
