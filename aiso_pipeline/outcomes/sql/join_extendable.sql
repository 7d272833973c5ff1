-- Whether the inference partitions added since day D's last join ($added_inference) leave its earlier attributions
-- as they were: an added call can only take an event by last touch if it is not later than that event, so every
-- added call (with a user) must come after every last-touch event of the product partitions already read
-- ($old_product). Direct attributions name one of D's own calls, and D's partition is unchanged. NULL-safe: no
-- added call, or no such event, is fine. DuckDB-specific: list parameters (list_contains).
SELECT coalesce(
    (SELECT min("timestamp") FROM raw.inference_events
     WHERE dt BETWEEN $dt::DATE AND $dt::DATE + $days  -- prunes other days; the list picks the added ones
       AND list_contains($added_inference::DATE[], dt) AND user_id IS NOT NULL)
    > (SELECT max("timestamp") FROM raw.product_events
       WHERE dt BETWEEN $dt::DATE AND $dt::DATE + $days
         AND list_contains($old_product::DATE[], dt)
         AND nullif(request_id, '') IS NULL AND user_id IS NOT NULL
         AND "timestamp" >= $dt::DATE::TIMESTAMPTZ
         AND "timestamp" <= ($dt::DATE + 1)::TIMESTAMPTZ + $window),
    true) AS extendable;
