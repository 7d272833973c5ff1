"""The Dagster code location: every asset, check, job, schedule and sensor under aiso_pipeline/defs."""
import dagster as dg

import aiso_pipeline.defs
from aiso_pipeline.defs.resources import WarehouseResource

defs = dg.Definitions.merge(
    dg.load_defs(aiso_pipeline.defs),
    dg.Definitions(
        resources={"warehouse": WarehouseResource()},
        # Steps run one after another in the run's process: DuckDB has a single writer.
        executor=dg.in_process_executor,
    ),
)
