-- Metrics of one product partition ($dt) that span tables or days: one row. Used by the `sql` checks
-- quarantine_share, files_quarantined, freshness (quality.ingest_log), volume (trailing days of raw rows) and
-- unknown_request_share (request_id against raw.inference_events of $dt - $lookback_days .. $dt).
WITH log AS (
    SELECT count(*) AS files,
           count(*) FILTER (WHERE file_error IS NOT NULL) AS files_quarantined,
           coalesce(sum(rows_read), 0) AS rows_read,
           coalesce(sum(rows_quarantined), 0) AS rows_quarantined
    FROM quality.ingest_log
    WHERE stream = 'product' AND dt = $dt::DATE
),
days AS (
    SELECT dt, count(*) AS n
    FROM raw.product_events
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
requests AS (
    SELECT count(*) AS with_request_id,
           count(*) FILTER (WHERE NOT EXISTS (  -- DuckDB plans this as one hash anti-join
               SELECT 1 FROM raw.inference_events AS i
               WHERE i.request_id = p.request_id
                 AND i.dt BETWEEN $dt::DATE - $lookback_days::INTEGER AND $dt::DATE)) AS unknown_request_id
    FROM raw.product_events AS p
    WHERE p.dt = $dt::DATE AND p.request_id IS NOT NULL
)
SELECT log.*, volume.*, requests.*
FROM log, volume, requests;
