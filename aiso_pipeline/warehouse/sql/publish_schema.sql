-- The working database's tables and their columns in order, except the pipeline's meta schema: what a publish
-- copies or exposes as views.
SELECT c.schema_name, c.table_name, c.column_name, c.data_type
FROM duckdb_columns() AS c
JOIN duckdb_tables() AS t
  ON t.database_name = c.database_name AND t.schema_name = c.schema_name AND t.table_name = c.table_name
WHERE c.database_name = current_database() AND c.schema_name <> 'meta' AND NOT c.internal
ORDER BY c.schema_name, c.table_name, c.column_index;
