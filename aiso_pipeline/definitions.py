"""The Dagster code location: every asset, check, job, schedule and sensor defined in aiso_pipeline/defs."""
import importlib
import pkgutil

import dagster as dg

import aiso_pipeline.defs
from aiso_pipeline.defs.resources import WarehouseResource

# define_asset_job returns a class Dagster does not export; take its type from the public function.
ASSET_JOB = type(dg.define_asset_job("_type_probe"))
KINDS = {
    "assets": (dg.AssetsDefinition, dg.SourceAsset),
    "asset_checks": (dg.AssetChecksDefinition,),
    "jobs": (dg.JobDefinition, ASSET_JOB),
    "schedules": (dg.ScheduleDefinition,),
    "sensors": (dg.SensorDefinition,),
}


def collect(package) -> dict[str, list]:
    """Module-level definitions of every module in `package`, by kind (a new module there is picked up as is)."""
    found = {kind: [] for kind in KINDS}
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            for kind, types in KINDS.items():
                # checks are AssetsDefinitions too: test the narrower kinds first
                if isinstance(value, dg.AssetChecksDefinition) and kind == "assets":
                    continue
                if isinstance(value, types) and not any(value is v for v in found[kind]):
                    found[kind].append(value)
    return found


defs = dg.Definitions(
    **collect(aiso_pipeline.defs),
    resources={"warehouse": WarehouseResource()},
    # Steps run one after another in the run's process: DuckDB has a single writer.
    executor=dg.in_process_executor,
)
