"""Landing files → raw.* tables, with quarantine and per-file accounting (CONTRACT sections 1-4)."""
from aiso_pipeline.ingest.engine import IngestSummary, ingest_partition, nothing_loaded

__all__ = ["IngestSummary", "ingest_partition", "nothing_loaded"]
