-- _lines, the rows of one CSV file: every cell as text (typing happens in the parse step, with reasons); each row becomes a
-- JSON object so all formats share one parse. Quote and escape are fixed (RFC 4180): auto-detection with
-- strict_mode off can otherwise guess no escape and miss the header. Line 1 is the header, so data rows start at
-- line 2 (rowid 0; rows are numbered as in stage_jsonl.sql). DuckDB-specific: read_csv, rowid.
CREATE OR REPLACE TEMP TABLE _staged AS
SELECT to_json(t)::VARCHAR AS payload
FROM read_csv($path, header = true, all_varchar = true, auto_detect = true, quote = '"', escape = '"',
              strict_mode = false, max_line_size = 16777216, hive_partitioning = false) AS t;

CREATE OR REPLACE TEMP VIEW _lines AS SELECT rowid + 2 AS line_number, payload FROM _staged;
