"""Deterministic, realistic sample data for the pipeline: landing files (CONTRACT sections 1-3) and the
experiment registry (section 6), plus a "truth" of what was planted for analytics to find.

Layout and formats
- `landing/{inference,product}/dt=YYYY-MM-DD/part-NNN.<ext>`: each day is split into files of at most
  MAX_FILE_ROWS rows (at least two a day). `formats="mixed"` rotates `.jsonl`, `.jsonl.gz`, `.parquet` and `.csv`
  across files; any single format name writes only that format.
- JSON lines leave absent values out (no `null`s); `timestamp` is ISO-8601 with `Z` or an offset, or epoch ms as a
  JSON number. CSV is flat: `features` / `properties` are JSON strings, epoch ms is a digit string. Parquet keeps
  `features` / `properties` as structs and timestamps as ISO-8601 strings.
- Inference files use the canonical keys or (about a third) the OpenTelemetry GenAI aliases, with `latency_s`;
  `region` and `app_version` are keys the contract does not name. Product files alternate snake_case and Segment's
  camelCase (which adds `type: "track"`); `request_id` is top level or in `properties`.

Reproducibility: every random draw comes from numpy generators seeded by (seed, day, file), ids are a bijective
hash of (day, file, row), and DuckDB `COPY` writes the same bytes on every run (gzip mtime 0), so the same
arguments give byte-identical files. Memory is bounded by one file's rows plus the product events still waiting
for their day.
"""
from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import yaml

from ..errors import AisoError
from . import faults, render
from .events import ATTRIBUTION, inference_shard, product_events
from .world import (CONVERSION, DAY_MS, DRIFT_MODEL, EPOCH, EXPERIMENTS, FEATURES, MODEL_NAMES, MODELS,
                    SPIKE_FACTOR, SPIKE_FEATURE, SPIKE_MODEL, TAG_FAULT, UNPRICED, World, id_keys)

__all__ = ["GenerateResult", "generate"]

MAX_FILE_ROWS = 1_000_000
GUARDRAILS = ["latency_ms", "cost_per_user", "error_rate"]
BAD_FILES = (("product", "empty", "jsonl"), ("inference", "truncated_gzip", "jsonl.gz"),
             ("product", "binary_garbage", "jsonl"))  # (stream, kind, format), in mixed runs with malformed=True


@dataclass
class GenerateResult:
    days: list[dt.date]
    files: list[Path] = field(default_factory=list)  # every file written, in order
    file_rows: dict[Path, int] = field(default_factory=dict)  # rows per landing file, faulty rows included
    inference_rows: int = 0  # valid distinct rows: what ingestion should load
    product_rows: int = 0
    malformed: dict[str, dict[str, int]] = field(default_factory=dict)  # stream -> kind -> rows to quarantine
    duplicates: dict[str, int] = field(default_factory=dict)  # stream -> exact repeats of a valid row
    bad_files: list[dict] = field(default_factory=list)  # whole unreadable files: stream, dt, path, kind
    truth: dict = field(default_factory=dict)


def generate(data_dir: Path, start: dt.date, end: dt.date, seed: int = 7, inferences_per_day: int = 6000,
             users: int = 4000, formats: str = "mixed", malformed: bool = True) -> GenerateResult:
    """Write landing files for every day start..end and `reference/experiments.yaml`; see the module docstring."""
    if formats != "mixed" and formats not in render.FORMATS:
        raise AisoError(f"unknown formats {formats!r}: use mixed or one of {', '.join(render.FORMATS)}")
    if end < start or inferences_per_day < 1 or users < 1:
        raise AisoError("generate needs start <= end and at least one inference a day and one user")
    days = [start + dt.timedelta(d) for d in range((end - start).days + 1)]
    gen = _Generator(Path(data_dir), World.build(seed, days, users), formats, malformed)
    try:
        gen.run(inferences_per_day)
    finally:
        gen.con.close()
    return gen.result


class _PlainDumper(yaml.SafeDumper):
    def ignore_aliases(self, data) -> bool:  # repeated values written out, not as &anchors
        return True


class _Generator:
    def __init__(self, root: Path, world: World, formats: str, malformed: bool):
        self.root, self.w, self.formats = root, world, formats
        self.con = duckdb.connect(config={"threads": 2})  # as fast here as more threads, with far less memory
        self.planter = faults.Planter(world.seed, malformed)
        self.result = GenerateResult(days=world.days)
        self.outcomes = dict.fromkeys([*ATTRIBUTION, "dropped_after_end"], 0)

    def run(self, inferences_per_day: int) -> None:
        w, n_days = self.w, len(self.w.days)
        shards = max(2, math.ceil(inferences_per_day / MAX_FILE_ROWS))
        pending = defaultdict(list)  # day index -> product events that land on that day
        day0 = (w.days[0] - EPOCH).days
        for i in range(n_days):
            for j in range(shards):
                inf = inference_shard(w, i, j, inferences_per_day // shards + (j < inferences_per_day % shards))
                events, attribution = product_events(w, inf, i, j)
                del inf["last"]
                for e in range(len(EXPERIMENTS)):  # variants each user was logged in (feature e runs experiment e)
                    rows = inf["experiment"] == e
                    w.seen[e, inf["user"][rows], inf["variant"][rows]] = True
                land = events["ts"] // DAY_MS - day0
                for d in np.unique(land):
                    rows = land == d
                    if d < n_days:  # events after `end` would fall outside the generated range
                        pending[d].append((faults.take(events, rows), attribution[rows]))
                    else:
                        self.outcomes["dropped_after_end"] += int((attribution[rows] >= 0).sum())
                self._write("inference", i, j, inf)
            today = pending.pop(i, [])
            if not today:  # only with a handful of calls a day
                continue
            events = faults.concat([e for e, _ in today])
            attribution = np.concatenate([a for _, a in today])
            for code, name in enumerate(ATTRIBUTION):
                self.outcomes[name] += int((attribution == code).sum())
            events = faults.take(events, np.argsort(events["ts"], kind="stable"))
            parts = max(2, math.ceil(len(events["ts"]) / MAX_FILE_ROWS))
            for j, idx in enumerate(np.array_split(np.arange(len(events["ts"])), parts)):
                self._write("product", i, j, faults.take(events, idx))
        if self.planter.enabled and self.formats == "mixed":
            self._bad_files()
        self._registry()
        self._truth()

    def _format(self, i: int, j: int) -> str:
        return render.FORMATS[(2 * i + j) % 4] if self.formats == "mixed" else self.formats

    def _path(self, stream: str, i: int, j: int, fmt: str) -> Path:
        folder = self.root / "landing" / stream / f"dt={self.w.days[i].isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"part-{j:03d}.{fmt}"
        self.result.files.append(path)
        return path

    def _write(self, stream: str, i: int, j: int, cols: dict[str, np.ndarray]) -> None:
        fmt = self._format(i, j)
        valid = len(cols["ts"])
        cols = self.planter.plant(stream, cols, fmt, i, self.w.days[i], j)
        if stream == "inference":
            select = render.inference_select(fmt, alias=(2 * i + j) % 3 == 1)
            self.result.inference_rows += valid + int((cols["bad"] == render.F["injection"]).sum())
        else:
            # Rotates so that every format meets both key styles and both request_id placements.
            select = render.product_select(fmt, camel=(i // 2 + j) % 2 == 1, request_in_properties=(i + j) % 2 == 1)
            self.result.product_rows += valid + int((cols["bad"] == render.F["injection"]).sum())
        path = self._path(stream, i, j, fmt)
        render.write(self.con, render.to_arrow(cols), select, fmt, path)
        self.result.file_rows[path] = len(cols["ts"])

    def _bad_files(self) -> None:
        """One empty, one truncated and one garbage file, on different days when there are enough."""
        w = self.w
        for k, (stream, kind, fmt) in enumerate(BAD_FILES):
            i = (k + 1) % len(w.days)
            path = self._path(stream, i, 100 + k, fmt)
            if kind == "empty":
                path.write_bytes(b"")
            elif kind == "binary_garbage":
                faults.garbage(path, w.seed)
            else:  # a real export with fresh ids, cut in half: whatever was readable must not load either
                cols = inference_shard(w, i, 255, 200)
                del cols["last"]
                cols["rid"] = id_keys(w.seed, w.days[i], 255, len(cols["ts"]), TAG_FAULT)
                cols["bad"] = np.zeros(len(cols["ts"]), np.int8)
                render.write(self.con, render.to_arrow(cols), render.inference_select(fmt, False), fmt, path)
                faults.truncated_gzip(path)
            self.result.bad_files.append(dict(stream=stream, dt=w.days[i].isoformat(), path=path, kind=kind))

    def _registry(self) -> None:
        w = self.w
        experiments = []
        for e in EXPERIMENTS:
            entry = dict(id=e.id, description=e.description, feature=FEATURES[e.feature].name, control=e.variants[0],
                         weights={v: 0.5 for v in e.variants}, primary_metric=e.primary_metric,
                         guardrails=GUARDRAILS, mde=e.mde, start=w.days[0])
            if e.id == "aa_test":
                entry["end"] = w.days[-1]
            experiments.append(entry)
        path = self.root / "reference" / "experiments.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.dump({"experiments": experiments}, Dumper=_PlainDumper, sort_keys=False))
        self.result.files.append(path)

    def _truth(self) -> None:
        w, r = self.w, self.result
        r.malformed, r.duplicates = self.planter.malformed, self.planter.duplicates
        experiments = {}
        for k, e in enumerate(EXPERIMENTS):
            seen = w.seen[k]
            single = seen.sum(axis=1) == 1
            info = dict(feature=FEATURES[e.feature].name, variants=list(e.variants), control=e.variants[0],
                        registry_weights={v: 0.5 for v in e.variants},
                        actual_weights={e.variants[0]: e.control_share, e.variants[1]: 1 - e.control_share},
                        users={v: int((single & seen[:, b]).sum()) for b, v in enumerate(e.variants)},
                        mixed_variant_users=int((seen.sum(axis=1) > 1).sum()))
            if k == 0:  # chat: conversion is decided per user, so the realised per-user rates are known
                info["conversion_probability"] = dict(zip(e.variants, CONVERSION))
                info["converted_users"] = {v: int((single & seen[:, b] & w.converted).sum())
                                           for b, v in enumerate(e.variants)}
            experiments[e.id] = info
        r.truth = dict(
            experiment_ids=[e.id for e in EXPERIMENTS],
            experiments=experiments,
            drift=dict(day=w.days[w.drift_day].isoformat(), model=MODEL_NAMES[DRIFT_MODEL],
                       columns=["prompt_chars", "language", "retrieved_docs", "input_tokens"], new_category="es"),
            unknown_request_id_day=w.days[w.unknown_day].isoformat(),
            cost_spike=dict(day=w.days[w.spike_day].isoformat(), model=MODEL_NAMES[SPIKE_MODEL],
                            feature=FEATURES[SPIKE_FEATURE].name, input_tokens_factor=SPIKE_FACTOR[0],
                            output_tokens_factor=SPIKE_FACTOR[1]),
            unpriced_models=list(UNPRICED),
            reported_cost_models=[m.name for m in MODELS if m.reported_price],
            sample_rates={f.name: f.sample_rate for f in FEATURES if (f.sample_rate or 1) < 1},
            injection_ids=dict(render.INJECTION) if self.planter.enabled else {},
            outcome_events=self.outcomes,
        )
