"""Ingest settings of a data directory: `<data dir>/reference/ingest.yaml` (optional).

    # Timestamps without an offset (e.g. "2026-03-10 09:00:00" in a CSV export) are quarantined unless you say
    # which zone they are in (an IANA name):
    naive_timestamps_timezone: Europe/Berlin
"""
from __future__ import annotations

from dataclasses import dataclass

import yaml

from aiso_pipeline.config import DataDir
from aiso_pipeline.errors import AisoError

KEYS = ("naive_timestamps_timezone",)


@dataclass(frozen=True)
class IngestSettings:
    naive_timezone: str | None = None


def load_settings(data: DataDir) -> IngestSettings:
    path = data.reference / "ingest.yaml"
    if not path.exists():
        return IngestSettings()
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise AisoError(f"{path}: not valid YAML ({str(e).splitlines()[0]}): fix the file or remove it") from e
    if not isinstance(raw, dict) or set(raw) - set(KEYS):
        unknown = sorted(set(raw) - set(KEYS)) if isinstance(raw, dict) else raw
        raise AisoError(f"{path}: unknown setting(s) {unknown}: the settings are {', '.join(KEYS)}")
    zone = raw.get("naive_timestamps_timezone")
    if zone is not None:
        import zoneinfo
        try:
            zoneinfo.ZoneInfo(str(zone))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise AisoError(f"{path}: naive_timestamps_timezone {zone!r} is not a time zone name: use an IANA name "
                            f"such as UTC or Europe/Berlin") from None
    return IngestSettings(str(zone) if zone is not None else None)
