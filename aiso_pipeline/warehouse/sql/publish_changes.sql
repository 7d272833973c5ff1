-- Partitions written after the previous publish's seq: the ones a publish writes again.
SELECT DISTINCT table_name, dt
FROM meta.partition_writes
WHERE seq > $since AND seq <= $upto
ORDER BY ALL;
