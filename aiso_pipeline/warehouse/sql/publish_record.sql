-- After a published copy reached $seq: remember it, then drop the log rows both copies already hold.
DELETE FROM meta.published_copies WHERE slot = $slot;
INSERT INTO meta.published_copies VALUES ($slot, $seq, current_timestamp);
UPDATE meta.change_log
SET pruned_through = greatest(pruned_through, (SELECT min(seq) FROM meta.published_copies))
WHERE (SELECT count(DISTINCT slot) FROM meta.published_copies) = 2;
DELETE FROM meta.partition_writes WHERE seq <= (SELECT pruned_through FROM meta.change_log);
