-- CSV: every cell as text (typing happens in the parse step, with reasons); each row becomes a JSON object so
-- all formats share one parse. Quote and escape are fixed (RFC 4180): auto-detection with strict_mode off
-- can otherwise guess no escape and miss the header. Line 1 is the header, so data rows start at line 2. DuckDB-specific: read_csv.
INSERT INTO _lines
SELECT $source_file, row_number() OVER () + 1, to_json(t)::VARCHAR
FROM read_csv($path, header = true, all_varchar = true, auto_detect = true, quote = '"', escape = '"',
              strict_mode = false, max_line_size = 16777216, hive_partitioning = false) AS t;
