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


MAX_SETTINGS_BYTES = 1024 * 1024  # a settings file of the data directory (reference/*.yaml) is small


def read_settings_yaml(path: Path):
    """A settings file of the data directory, parsed safely: at most MAX_SETTINGS_BYTES, and no YAML aliases (a
    449-byte alias bomb expands until memory runs out; settings never need one). Errors are one AisoError line."""
    import yaml

    from aiso_pipeline.errors import AisoError

    class NoAliases(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.YAMLError(f"an alias (*{event.anchor}) at line {event.start_mark.line + 1}")
            return super().compose_node(parent, index)

    size = path.stat().st_size
    if size > MAX_SETTINGS_BYTES:
        raise AisoError(f"{path}: {size:,} bytes, more than a settings file holds ({MAX_SETTINGS_BYTES:,}): "
                        f"fix the file or remove it")
    try:
        return yaml.load(path.read_text(), Loader=NoAliases)  # noqa: S506 - a SafeLoader without aliases
    except yaml.YAMLError as e:
        lines = str(e).strip().splitlines()
        raise AisoError(f"{path}: not valid YAML ({lines[0] if lines else 'unreadable'}; aliases are not "
                        f"allowed): fix the file or remove it") from None
    except UnicodeDecodeError:
        raise AisoError(f"{path}: not UTF-8 text: fix the file or remove it") from None


def literal(path: str | os.PathLike) -> str:
    """A file's path as DuckDB's readers take it: they expand `[ ] * ?` as a glob, so each is put in a bracket
    class of its own (`x[1].jsonl` -> `x[[]1].jsonl`): the path names exactly that file, never a pattern."""
    return str(path).replace("[", "[[]").replace("*", "[*]").replace("?", "[?]")


def data_dir(path: str | os.PathLike | None = None) -> DataDir:
    """The data directory: `path`, else $AISO_DATA_DIR, else ./data."""
    raw = path or os.environ.get("AISO_DATA_DIR") or "data"
    return DataDir(Path(raw).expanduser().resolve())
