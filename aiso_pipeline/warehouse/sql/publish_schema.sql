-- Tables (with their columns, in order) and views of attached database $db, except the pipeline's meta schema:
-- a published copy can only be updated in place while this matches the working database.
SELECT 'table' AS kind, schema_name, table_name AS name, column_index, column_name AS detail, data_type
FROM duckdb_columns()
WHERE database_name = $db AND schema_name <> 'meta' AND NOT internal
UNION ALL
SELECT 'view', schema_name, view_name, NULL, sql, NULL
FROM duckdb_views()
WHERE database_name = $db AND schema_name <> 'meta' AND NOT internal
ORDER BY ALL;
