-- _lines: one row per physical line of a JSON-lines file (plain, gzip or zstd: $compression, told from the bytes),
-- with its 1-based line number. The file is read as plain text (no quoting, an unprintable two-byte delimiter) so a
-- broken line still arrives, to be quarantined. Blank lines arrive as NULL and are skipped by the parse. A line over
-- max_line_size (16 MiB; DuckDB reads compressed files in buffers of 16x that) makes the file unreadable,
-- quarantined whole. One file at a time: numbering lines needs the file's order, so the parse reads this table
-- instead (in parallel). The order is kept by the table, not a window: CREATE TABLE AS preserves insertion order
-- (preserve_insertion_order, DuckDB's default), so rowid n holds line n + 1, and the parallel reader needs no
-- single-threaded row_number() pass. A line that is not UTF-8 or is over the size does not stop the file: the
-- reader sets it aside (_reject_errors, with its line number) and stage.py quarantines it, numbering the other
-- lines around it. DuckDB-specific: read_csv options, store_rejects, rowid.
DROP TABLE IF EXISTS _reject_errors;
DROP TABLE IF EXISTS _reject_scans;
CREATE OR REPLACE TEMP TABLE _staged AS
SELECT line AS payload
FROM read_csv($path, columns = {'line': 'VARCHAR'}, header = false, delim = chr(30) || chr(31), quote = '',
              escape = '', auto_detect = false, strict_mode = false, null_padding = true,
              max_line_size = 16777216, hive_partitioning = false, compression = $compression,
              store_rejects = true, rejects_table = '_reject_errors', rejects_scan = '_reject_scans');
