-- Landing files of a partition ($stream, $dt) rejected whole, with the reason.
SELECT source_file, file_error AS reason
FROM quality.ingest_log
WHERE stream = $stream AND dt = $dt::DATE AND file_error IS NOT NULL
ORDER BY source_file
LIMIT $n;
