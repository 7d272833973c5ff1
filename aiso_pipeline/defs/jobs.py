import dagster as dg


# The nightly run for one day: every asset of the day's partition, checks included (CONTRACT section 8).
nightly_job = dg.define_asset_job(
    "nightly", selection=dg.AssetSelection.all(),
    description="Ingest, validate, join, cost, drift, experiments and anomalies for one day.",
)
