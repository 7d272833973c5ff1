"""Ingest settings of a data directory: `<data dir>/reference/ingest.yaml` (optional).

    # Timestamps without an offset (e.g. "2026-03-10 09:00:00" in a CSV export) are quarantined unless you say
    # which zone they are in (an IANA name):
    naive_timestamps_timezone: Europe/Berlin
    # Bad rows of one file stored in quality.quarantine (the rest are counted in quality.ingest_log):
    max_quarantined_rows_per_file: 100000
    # A gzip or zstd file that expands more than this many times is quarantined whole (a compression bomb):
    max_compression_ratio: 200
"""
from __future__ import annotations

from dataclasses import dataclass


from aiso_pipeline.config import DataDir, read_settings_yaml
from aiso_pipeline.errors import AisoError

KEYS = ("naive_timestamps_timezone", "max_quarantined_rows_per_file", "max_compression_ratio")
MAX_QUARANTINED_ROWS_PER_FILE = 100_000  # stored in quality.quarantine per file; the rest are counted
MAX_COMPRESSION_RATIO = 200  # JSON lines compress 5-30x; a file that expands more is a bomb, quarantined whole


@dataclass(frozen=True)
class IngestSettings:
    naive_timezone: str | None = None
    # A file whose bad rows pass this stores only the first ones in quality.quarantine (one more row says how
    # many more there were); quality.ingest_log counts them all. A 49 KB gzip of junk lines would otherwise write
    # 16.8M quarantine rows (3 GB).
    max_quarantined_rows_per_file: int = MAX_QUARANTINED_ROWS_PER_FILE
    max_compression_ratio: float = MAX_COMPRESSION_RATIO


def load_settings(data: DataDir) -> IngestSettings:
    path = data.reference / "ingest.yaml"
    if not path.exists():
        return IngestSettings()
    raw = read_settings_yaml(path) or {}
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
    cap = raw.get("max_quarantined_rows_per_file", MAX_QUARANTINED_ROWS_PER_FILE)
    if isinstance(cap, bool) or not isinstance(cap, int) or not 1 <= cap <= 100_000_000:
        raise AisoError(f"{path}: max_quarantined_rows_per_file must be a whole number from 1 to 100,000,000, "
                        f"got {cap!r}")
    ratio = raw.get("max_compression_ratio", MAX_COMPRESSION_RATIO)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 1 <= ratio <= 1_000_000:
        raise AisoError(f"{path}: max_compression_ratio must be a number from 1 to 1,000,000, got {ratio!r}")
    return IngestSettings(str(zone) if zone is not None else None, cap, float(ratio))
