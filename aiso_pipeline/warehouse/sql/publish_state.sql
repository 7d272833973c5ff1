-- This database's identity, how far its change log was pruned, and the last change: what a publish copies up to.
SELECT database_id, pruned_through,
       greatest(pruned_through, coalesce((SELECT max(seq) FROM meta.partition_writes), 0)) AS upto
FROM meta.change_log;
