import dagster as dg

# The nightly run for one day: every asset of the day's partition, checks included (CONTRACT section 8).
nightly_job = dg.define_asset_job(
    "nightly", selection=dg.AssetSelection.all(),
    description="Ingest, validate, join, cost, drift, experiments and anomalies for one day.",
)

# The same run in two halves, for ranges of days (`aiso run --start --end`): every day's landing files first, so
# day D's outcomes are joined with the product events of D+1 that a day-by-day order would not have loaded yet.
ingest_job = dg.define_asset_job(
    "ingest", selection=dg.AssetSelection.groups("ingest"),
    description="Ingest and validate one day's landing files (the first half of `nightly`).",
)
marts_job = dg.define_asset_job(
    "marts", selection=dg.AssetSelection.all() - dg.AssetSelection.groups("ingest"),
    description="Outcomes, rollups, drift, experiments and anomalies for one day (the second half of `nightly`).",
)

# A day whose outcome window was still open when last joined: only what late product events change, and the day's
# anomalies, whose outcome-based metrics (join rate, cost per success, ECE) are judged once the window has closed.
REFRESH_SELECTION = dg.AssetSelection.groups("outcomes") | dg.AssetSelection.assets(
    dg.AssetKey(["marts", "anomalies"]), dg.AssetKey(["marts", "scorecard"]))
refresh_job = dg.define_asset_job(
    "refresh_outcomes", selection=REFRESH_SELECTION,
    description="Recompute joined outcomes, coverage, cost rollups, calibration, the threshold curve, slices, "
                "anomalies and the scorecard of a day whose attribution window was still open, after later days' product events were "
                "loaded.",
)
