-- window_closed for day D: the product data loaded so far reaches past the window of the day's last possible
-- inference (an event at or after end of D + window), or a product partition after D+k+1 exists. Bounded scans
-- only, so a backfill of an old day does not read everything that came after it. Portable SQL.
SELECT coalesce(max("timestamp") >= ($dt::DATE + 1)::TIMESTAMPTZ + $window, false)
       OR EXISTS (SELECT 1 FROM raw.product_events WHERE dt > $dt::DATE + $days + 1) AS window_closed
FROM raw.product_events
WHERE dt BETWEEN $dt::DATE + $days AND $dt::DATE + $days + 1;
