"""Where things live under the data directory (CONTRACT section 1). Resolved at run time, never at import."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

STREAMS = ("inference", "product")
DEFAULT_PRICES = Path(__file__).parent / "reference" / "model_prices.csv"


@dataclass(frozen=True)
class DataDir:
    root: Path

    def landing(self, stream: str) -> Path:
        return self.root / "landing" / stream

    def partition_dir(self, stream: str, dt: str) -> Path:
        return self.landing(stream) / f"dt={dt}"

    @property
    def reference(self) -> Path:
        return self.root / "reference"

    @property
    def prices(self) -> Path:
        return self.reference / "model_prices.csv"

    @property
    def experiments(self) -> Path:
        return self.reference / "experiments.yaml"

    @property
    def warehouse(self) -> Path:
        """The published database analysts open read-only."""
        return self.root / "warehouse.duckdb"

    @property
    def work_db(self) -> Path:
        """The pipeline's own database; copied to `warehouse` when a run succeeds."""
        return self.root / ".work" / "pipeline.duckdb"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def dagster_home(self) -> Path:
        return self.root / ".dagster"


def literal(path: str | os.PathLike) -> str:
    """A file's path as DuckDB's readers take it: they expand `[ ] * ?` as a glob, so each is put in a bracket
    class of its own (`x[1].jsonl` -> `x[[]1].jsonl`): the path names exactly that file, never a pattern."""
    return str(path).replace("[", "[[]").replace("*", "[*]").replace("?", "[?]")


def data_dir(path: str | os.PathLike | None = None) -> DataDir:
    """The data directory: `path`, else $AISO_DATA_DIR, else ./data."""
    raw = path or os.environ.get("AISO_DATA_DIR") or "data"
    return DataDir(Path(raw).expanduser().resolve())
