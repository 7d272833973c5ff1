"""Bad input planted in the landing files: malformed rows (each to be quarantined), exact duplicates, an
injection-like id (valid), and whole unreadable files. Faulty rows are extra copies of valid rows, so the valid
data is the same with or without them."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from .render import F, JSON_FORMATS, KINDS
from .world import TAG_FAULT, id_keys

ID = {"inference": "rid", "product": "mid"}
MALFORMED_SHARE, DUPLICATE_SHARE = 0.003, 0.001


def writable(kind: str, fmt: str) -> bool:
    """A broken line exists only in JSON lines; a typed parquet column cannot hold a wrong type."""
    if kind == "broken_json":
        return fmt in JSON_FORMATS
    return kind != "bad_type" or fmt != "parquet"


def take(cols: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[idx] for k, v in cols.items()}


def concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


class Planter:
    """Adds the faults of one run file by file, cycling through the kinds so that each one shows up."""

    def __init__(self, seed: int, enabled: bool):
        self.seed, self.enabled = seed, enabled
        self.next_kind = {stream: 0 for stream in KINDS}
        self.carry: dict[str, tuple[int, dict]] = {}  # (day index, a row of that day) to repeat into the next day
        self.malformed = {stream: {kind: 0 for kind in kinds} for stream, kinds in KINDS.items()}
        self.duplicates = {stream: 0 for stream in KINDS}
        self.injected: set[str] = set()

    def plant(self, stream: str, cols: dict[str, np.ndarray], fmt: str, day_i: int, day: dt.date,
              part: int) -> dict[str, np.ndarray]:
        """`cols` (valid rows, bad = 0) plus this file's faulty copies, time-ordered."""
        n = len(cols["ts"])
        cols["bad"] = np.zeros(n, np.int8)
        if not self.enabled or n == 0:
            return cols
        file_key = 2 * part + list(KINDS).index(stream)
        rng = np.random.default_rng([self.seed, day_i, file_key, 3])
        kinds = [k for k in KINDS[stream] if writable(k, fmt)]
        first = stream not in self.injected
        count = max(round(MALFORMED_SHARE * n), len(kinds) if first else 1)
        start = self.next_kind[stream]
        bad = [kinds[(start + i) % len(kinds)] for i in range(count)]
        self.next_kind[stream] = (start + count) % len(kinds)
        for kind in bad:
            self.malformed[stream][kind] += 1
        broken = take(cols, rng.integers(0, n, count + first))
        broken["bad"] = np.array([F[k] for k in bad] + [F["injection"]] * first, np.int8)
        # Fresh ids: a malformed row must never be mistaken for a duplicate of a valid one.
        broken[ID[stream]] = id_keys(self.seed, day, file_key, count + first, TAG_FAULT)
        self.injected.add(stream)

        dups = take(cols, rng.integers(0, n, max(1, round(DUPLICATE_SHARE * n))))
        parts = [cols, broken, dups]
        if stream in self.carry and self.carry[stream][0] < day_i:  # yesterday's row, repeated into today's folder
            parts.append(self.carry.pop(stream)[1])
        if stream not in self.carry:
            self.carry[stream] = day_i, take(cols, slice(0, 1))
        self.duplicates[stream] += sum(len(p["ts"]) for p in parts[2:])
        out = concat(parts)
        return take(out, np.argsort(out["ts"], kind="stable"))


def truncated_gzip(path: Path) -> None:
    """Cut a written .jsonl.gz in the middle of its compressed stream."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def garbage(path: Path, seed: int) -> None:
    path.write_bytes(np.random.default_rng([seed, 5]).bytes(1024))
