-- Metrics of one inference partition ($dt) that span tables or days: one row. Used by the `sql` checks
-- quarantine_share, files_quarantined, freshness (quality.ingest_log), volume (trailing days of raw rows) and
-- usage_keys_unmapped (files whose rows carry no token count or cost while a usage key sits in `attributes`).
WITH log AS (
    SELECT count(*) AS files,
           count(*) FILTER (WHERE file_error IS NOT NULL) AS files_quarantined,
           coalesce(sum(rows_read), 0) AS rows_read,
           coalesce(sum(rows_quarantined), 0) AS rows_quarantined
    FROM quality.ingest_log
    WHERE stream = 'inference' AND dt = $dt::DATE
),
days AS (  -- row count per day, the partition and the trailing $history_days days (zone maps skip other days)
    SELECT dt, count(*) AS n
    FROM raw.inference_events
    WHERE dt BETWEEN $dt::DATE - $history_days::INTEGER AND $dt::DATE
    GROUP BY dt
),
volume AS (
    SELECT coalesce(max(n) FILTER (WHERE dt = $dt::DATE), 0) AS rows_loaded,
           median(n) FILTER (WHERE dt < $dt::DATE) AS median_rows,
           count(*) FILTER (WHERE dt < $dt::DATE) AS history_days,
           coalesce(list({'dt': dt::VARCHAR, 'rows': n} ORDER BY dt) FILTER (WHERE dt < $dt::DATE), []) AS history
    FROM days
),
usage AS (  -- a usage or cost key (its name matches $usage_pattern) with a value that says something
    SELECT count(*) AS files_usage_unmapped, coalesce(list(source_file ORDER BY source_file), []) AS usage_unmapped_files
    FROM (
        SELECT source_file
        FROM raw.inference_events
        WHERE dt = $dt::DATE
        GROUP BY source_file
        HAVING bool_and(input_tokens IS NULL AND output_tokens IS NULL AND cost_usd IS NULL)
           AND bool_or(len(list_filter(coalesce(map_entries(try(json_transform(attributes, '"MAP(VARCHAR, JSON)"'))), []),
                                       lambda e: regexp_matches(lower(e.key), $usage_pattern)
                                                 AND e.value::VARCHAR NOT IN ('{}', '[]', 'null', '0', '0.0', '""'))) > 0)
    )
),
SELECT log.*, volume.*, usage.*, NULL::BIGINT AS with_request_id, NULL::BIGINT AS unknown_request_id
FROM log, volume, usage;
