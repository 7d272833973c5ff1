-- _lines for a file holding one JSON document: an array of records (each element is a record, numbered from 1),
-- or one pretty-printed object (record 1): $json_format array | unstructured, from the sniffed first line. Objects over 16 MiB make the file unreadable, quarantined whole.
-- DuckDB-specific: read_json_objects, rowid.
CREATE OR REPLACE TEMP TABLE _staged AS
SELECT json::VARCHAR AS payload
FROM read_json_objects($path, format = $json_format, compression = $compression, maximum_object_size = 16777216,
                       hive_partitioning = false);

CREATE OR REPLACE TEMP VIEW _lines AS SELECT rowid + 1 AS line_number, payload FROM _staged;
