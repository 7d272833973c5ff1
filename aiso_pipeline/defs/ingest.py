"""Ingestion assets: landing files of a day → raw.inference_events / raw.product_events."""

import dagster as dg

from aiso_pipeline.defs.metadata import markdown_table, table_metadata
from aiso_pipeline.defs.resources import DAILY, OWNERS, POOL, WarehouseResource
from aiso_pipeline.errors import AisoError
from aiso_pipeline.ingest import ingest_partition, nothing_loaded

DESCRIPTIONS = {
    "inference": "One row per loaded model call (CONTRACT section 2): aliases resolved, unknown keys in "
                 "`attributes`, cost from the reported `cost_usd` or the price table. Bad rows and unreadable "
                 "files go to quality.quarantine; per-file accounting in quality.ingest_log.",
    "product": "One row per loaded product event (Segment track call, CONTRACT section 3), deduplicated on "
               "message_id; `revenue` from properties.revenue. Bad rows go to quality.quarantine.",
}


def ingest_asset(stream: str) -> dg.AssetsDefinition:
    table = f"raw.{stream}_events"

    @dg.asset(
        key=["raw", f"{stream}_events"],
        description=DESCRIPTIONS[stream],
        partitions_def=DAILY,
        group_name="ingest",
        kinds={"duckdb", "sql"},
        owners=OWNERS,
        pool=POOL,
        tags={"stream": stream},
    )
    def _ingest(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        with warehouse.connect() as con:
            s = ingest_partition(con, warehouse.data(), stream, context.partition_key)
            meta = table_metadata(con, table, context.partition_key)
            failure = nothing_loaded(con, s)
        if failure:  # the files and the log are recorded (quality.*); the day's downstream assets are not built
            raise AisoError(failure)
        if s.files == 0:
            context.log.warning(f"no {stream} files for {s.dt} in landing/{stream}/dt={s.dt}/")
        reasons = markdown_table(["reason", "rows"], list(s.quarantine_reasons.items()))
        return dg.MaterializeResult(metadata={
            **meta,
            "files": s.files, "files_quarantined": s.files_quarantined, "rows_read": s.rows_read,
            "rows_loaded": s.rows_loaded, "rows_duplicate": s.rows_duplicate,
            "rows_quarantined": s.rows_quarantined, "rows_skipped": s.rows_skipped, "rows_unpriced": s.rows_unpriced,
            "sources": dg.MetadataValue.md(markdown_table(["file", "read as"], sorted(s.sources.items()))),
            "quarantine_reasons": dg.MetadataValue.md(reasons),
        })

    return _ingest


raw_inference_events = ingest_asset("inference")
raw_product_events = ingest_asset("product")
