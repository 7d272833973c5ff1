-- Keys of this batch already loaded in another partition (CONTRACT section 4: "in this or any earlier partition").
-- A pass over every partition's 8-byte key_hash (warehouse/sql/key_hashes.sql) finds the days where a hash
-- matches; key strings are compared only in those days (usually none), so history costs a small 8-byte scan.
-- The stream's parse step defines _history (dedup_key, key_hash, dt). DuckDB-specific: hash().
CREATE OR REPLACE TEMP TABLE _batch_keys AS
SELECT DISTINCT dedup_key, hash(dedup_key) AS key_hash FROM _parsed WHERE reason IS NULL;

CREATE OR REPLACE TEMP TABLE _seen AS
SELECT DISTINCT h.dedup_key
FROM _history AS h
WHERE h.dt IN (SELECT DISTINCT dt FROM _history WHERE dt <> $dt AND key_hash IN (SELECT key_hash FROM _batch_keys))
  AND h.dt <> $dt
  AND h.dedup_key IN (SELECT dedup_key FROM _batch_keys);
