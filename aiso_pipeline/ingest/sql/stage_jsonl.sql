-- _lines: one row per physical line of a JSON-lines file (plain, gzip or zstd: $compression, told from the bytes),
-- with its 1-based line number. The file is read as plain text (no quoting, an unprintable two-byte delimiter) so a
-- broken line still arrives, to be quarantined. Blank lines arrive as NULL and are skipped by the parse. A line over
-- max_line_size (16 MiB; DuckDB reads compressed files in buffers of 16x that) makes the file unreadable,
-- quarantined whole. One file at a time: numbering lines needs the file's order, so the parse reads this table
-- instead (in parallel). The order is kept by the table, not a window: CREATE TABLE AS preserves insertion order
-- (preserve_insertion_order, DuckDB's default), so rowid n holds line n + 1, and the parallel reader needs no
-- single-threaded row_number() pass. DuckDB-specific: read_csv options, rowid.
CREATE OR REPLACE TEMP TABLE _staged AS
SELECT line AS payload
FROM read_csv($path, columns = {'line': 'VARCHAR'}, header = false, delim = chr(30) || chr(31), quote = '',
              escape = '', auto_detect = false, strict_mode = false, null_padding = true,
              max_line_size = 16777216, hive_partitioning = false, compression = $compression);

CREATE OR REPLACE TEMP VIEW _lines AS SELECT rowid + 1 AS line_number, payload FROM _staged;
