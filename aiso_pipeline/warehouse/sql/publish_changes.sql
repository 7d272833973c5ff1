-- Partitions written after a published copy's seq: the ones to copy into it.
SELECT DISTINCT table_name, dt
FROM meta.partition_writes
WHERE seq > $since AND seq <= $upto
ORDER BY ALL;
