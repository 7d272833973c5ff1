-- Parquet: each row becomes a JSON object so all formats share one parse; line_number is the 1-based row
-- (insertion order is preserved by the scan). DuckDB-specific: read_parquet, to_json of a row.
INSERT INTO _lines
SELECT $source_file, row_number() OVER (), to_json(t)::VARCHAR
FROM read_parquet($path, hive_partitioning = false) AS t;  -- no `dt` column from the dt= folder name
