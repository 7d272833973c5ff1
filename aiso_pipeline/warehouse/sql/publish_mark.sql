-- Inside the incremental update's transaction: the published copy (attached as 'standby') now holds up to $seq.
UPDATE standby.meta.published SET seq = $seq, published_at = current_timestamp, method = 'incremental';
