-- raw.*.key_hash = hash() of the row's dedup key, stored beside it so dedup against every earlier partition reads
-- 8 bytes a row of history instead of the key strings (ingest/sql/dedup.sql). DuckDB's hash() may change between
-- versions: meta.key_hash records hash() of a fixed string when the column was filled (key_hashes_refill.sql).
CREATE SCHEMA IF NOT EXISTS meta;
CREATE TABLE IF NOT EXISTS meta.key_hash (probe UBIGINT);
ALTER TABLE raw.inference_events ADD COLUMN IF NOT EXISTS key_hash UBIGINT;
ALTER TABLE raw.product_events ADD COLUMN IF NOT EXISTS key_hash UBIGINT;
SELECT count(*) = 1 AS current FROM meta.key_hash WHERE probe = hash('aiso_pipeline key_hash');
