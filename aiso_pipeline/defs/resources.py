
from contextlib import contextmanager
from typing import Iterator, Optional

import dagster as dg
import duckdb

from aiso_pipeline import warehouse
from aiso_pipeline.config import DataDir, data_dir

OWNERS = ["team:data-platform"]
POOL = "duckdb"  # one writer at a time (see aiso_pipeline/instance/dagster.yaml)
DAILY = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_offset=1)


class WarehouseResource(dg.ConfigurableResource):
    """The data directory and the pipeline's DuckDB database. Resolved when a run starts, not at import."""

    data_dir: Optional[str] = None  # default: $AISO_DATA_DIR, else ./data
    memory_limit: Optional[str] = None  # DuckDB memory_limit, e.g. "8GB"; default: $AISO_MEMORY_LIMIT or 3GB

    def data(self) -> DataDir:
        return data_dir(self.data_dir)

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with warehouse.connect(self.data(), self.memory_limit) as con:
            yield con


def daily_asset(key: dg.AssetKey, *, group: str, description: str, deps: list, kinds=frozenset({"duckdb", "sql"})):
    """A daily-partitioned DuckDB asset with the project's owners and pool."""
    return dg.asset(key=key, deps=deps, description=description, partitions_def=DAILY, group_name=group,
                    kinds=set(kinds), owners=OWNERS, pool=POOL)
