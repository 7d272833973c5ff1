-- Log that the current transaction replaces partition $dt of $table_name (see changes.sql).
INSERT INTO meta.partition_writes VALUES ($table_name, $dt::DATE, nextval('meta.partition_write_seq'), current_timestamp);
