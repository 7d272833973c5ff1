-- _lines, the rows of one Parquet file: each row becomes a JSON object so all formats share one parse; line_number is the
-- 1-based row (insertion order is preserved by the scan). DuckDB-specific: read_parquet, to_json of a row.
CREATE OR REPLACE TEMP TABLE _lines AS
SELECT row_number() OVER () AS line_number, to_json(t)::VARCHAR AS payload
FROM read_parquet($path, hive_partitioning = false) AS t;  -- no `dt` column from the dt= folder name
