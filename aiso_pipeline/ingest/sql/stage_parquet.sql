-- _lines, the rows of one Parquet file: each row becomes a JSON object so all formats share one parse; line_number is the
-- 1-based row (insertion order is preserved by the scan; rows are numbered as in stage_jsonl.sql).
-- DuckDB-specific: read_parquet, to_json of a row, rowid.
CREATE OR REPLACE TEMP TABLE _staged AS
SELECT to_json(t)::VARCHAR AS payload
FROM read_parquet($path, hive_partitioning = false) AS t;  -- no `dt` column from the dt= folder name

CREATE OR REPLACE TEMP VIEW _lines AS SELECT rowid + 1 AS line_number, payload FROM _staged;
