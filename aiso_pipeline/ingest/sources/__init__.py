"""Source declarations: what each supported export looks like and how its keys map onto the canonical keys.

Data, not SQL: `fields.yaml` declares the canonical keys of each stream (type, range, default, rules); every other
`*.yaml` here declares one source (how it is recognized from the content, where each canonical key sits in its
records, value maps and unit conversions, which records are skipped); `vocabularies/*.yaml` declares attribute
names that several sources share (the OpenTelemetry GenAI, OpenLLMetry and OpenInference names). ingest/render.py
renders the parse SQL from them; the README's table of sources and the tests' parameters come from them too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from aiso_pipeline.config import STREAMS

HERE = Path(__file__).resolve().parent
TYPES = ("string", "integer", "number", "boolean", "enum", "timestamp", "object", "scalar_object")
RECORDS = ("json", "otlp")  # one JSON object per line/row, or OTLP ExportTraceServiceRequest lines (spans inside)


class DeclarationError(ValueError):
    """A declaration file is malformed: a bug in the package, caught by the tests."""


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool = False
    trim: bool = False
    default: Any = None
    default_if: tuple[tuple[str, Any], ...] = ()
    min: float | None = None
    max: float | None = None
    max_abs: float | None = None
    at_most: str | None = None
    inherit: bool = False
    values: tuple[str, ...] = ()
    column: str = ""  # working column name; defaults to the key
    label: str = ""  # name in quarantine reasons; defaults to the key

    @property
    def col(self) -> str:
        return self.column or self.name

    @property
    def reason_name(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class Stream:
    name: str
    dedup_key: str
    fields: dict[str, Field]
    one_of: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class Path_:
    """Where a value sits in a record: nested keys (`usage/prompt_tokens` is key `usage`, then `prompt_tokens`; dots
    belong to a key; `*` is any element of an array, the first that has the rest), with optional conversions:
    `strip` removes a prefix (`0x`), `map` translates a value (compared case-insensitively; null maps to nothing),
    `value` replaces any value with a constant, `unless` ignores the path when a condition holds, `scale`
    multiplies a number (seconds -> ms: 1000); or instead of keys, `between` (the time from one timestamp to another,
    in ms), `sum` (the sum of the paths that have a value) or `sum_keys` (the sum of an object's values whose key
    contains a text: Langfuse's usage_details)."""
    keys: tuple[str, ...] = ()
    scale: float | None = None
    map: tuple[tuple[str, str | None], ...] = ()
    strip: str = ""
    value: str | None = None
    unless: "Condition | None" = None
    between: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    sum: tuple[tuple[str, ...], ...] = ()
    sum_keys: tuple[tuple[str, ...], str] | None = None  # (object, substring): its values whose key contains it

    @property
    def text(self) -> str:
        return "/".join(self.keys)

    def key_paths(self) -> list[tuple[str, ...]]:
        """Every record path this entry reads."""
        out = [self.keys] if self.keys else []
        out += list(self.between or ()) + list(self.sum) + ([self.sum_keys[0]] if self.sum_keys else [])
        out += self.unless.paths() if self.unless else []
        return out


@dataclass(frozen=True)
class Condition:
    """A test on one record: `path` has a value in `values` (case-insensitive), or exists (`values` empty);
    `absent` also accepts a record without the path. `any` / `all` combine conditions; `negate` inverts."""
    path: tuple[str, ...] = ()
    values: tuple[str, ...] = ()
    absent: bool = False
    any: tuple["Condition", ...] = ()
    all: tuple["Condition", ...] = ()
    negate: bool = False

    def paths(self) -> list[tuple[str, ...]]:
        out = [self.path] if self.path else []
        for c in (*self.any, *self.all):
            out += c.paths()
        return out


@dataclass(frozen=True)
class Source:
    name: str
    stream: str
    title: str
    record: str
    example: str
    priority: int
    recognize: Condition | None
    keep: Condition | None  # records that are not kept are skipped and counted (None: every record is kept)
    skip_reason: tuple[Path_, ...]
    fields: dict[str, tuple[Path_, ...]]
    reads: str = ""  # what the README says is read
    skips: str = ""  # what the README says is skipped
    file: str = ""

    naive_timezone: str | None = None  # the zone of the source's timestamps written without one (documented)

    def paths(self) -> list[Path_]:
        return [p for ps in self.fields.values() for p in ps] + list(self.skip_reason)

    def key_paths(self) -> list[tuple[str, ...]]:
        """Every record path the declaration reads, conditions included, first use first."""
        out = [k for p in self.paths() for k in p.key_paths()] + self.condition_paths()
        return list(dict.fromkeys(out))

    def condition_paths(self) -> list[tuple[str, ...]]:
        """Paths the per-record `keep` condition reads (`recognize` reads the raw head of a file instead)."""
        return self.keep.paths() if self.keep else []


def _load_yaml(path: Path) -> dict:
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise DeclarationError(f"{path.name}: not valid YAML ({e})") from e
    if not isinstance(loaded, dict):
        raise DeclarationError(f"{path.name}: expected a mapping")
    return loaded


def _keys(text: str, where: str) -> tuple[str, ...]:
    if not isinstance(text, str) or not text or any(not k for k in text.split("/")):
        raise DeclarationError(f"{where}: a path is non-empty keys separated by '/', got {text!r}")
    return tuple(text.split("/"))


@cache
def streams() -> dict[str, Stream]:
    raw = _load_yaml(HERE / "fields.yaml")
    out = {}
    for name in STREAMS:
        spec = raw.get(name) or {}
        fields = {}
        for key, f in (spec.get("fields") or {}).items():
            f = dict(f)
            if f.get("type") not in TYPES:
                raise DeclarationError(f"fields.yaml: {name}.{key}.type must be one of {TYPES}")
            f["default_if"] = tuple((f.get("default_if") or {}).items())
            f["values"] = tuple(f.get("values") or ())
            fields[key] = Field(name=key, **f)
        for f in fields.values():
            for other in [f.at_most, *(k for k, _ in f.default_if)]:
                if other and other not in fields:
                    raise DeclarationError(f"fields.yaml: {name}.{f.name} refers to unknown key {other!r}")
        one_of = tuple(tuple(group) for group in spec.get("one_of") or ())
        if spec.get("dedup_key") not in fields:
            raise DeclarationError(f"fields.yaml: {name}.dedup_key must name one of its fields")
        out[name] = Stream(name, spec["dedup_key"], fields, one_of)
    return out


@cache
def vocabularies() -> dict[str, dict]:
    out = {}
    for path in sorted((HERE / "vocabularies").glob("*.yaml")):
        raw = _load_yaml(path)
        if raw.get("name") != path.stem:
            raise DeclarationError(f"{path.name}: name must be {path.stem!r}")
        out[path.stem] = raw
    return out


def _path(entry, where: str) -> Path_:
    if isinstance(entry, str):
        return Path_(_keys(entry, where))
    if not isinstance(entry, dict):
        raise DeclarationError(f"{where}: a path entry is a string or a mapping, got {entry!r}")
    unknown = set(entry) - {"path", "scale", "map", "between", "sum", "sum_keys", "strip", "value", "unless"}
    if unknown:
        raise DeclarationError(f"{where}: unknown path option(s) {sorted(unknown)}")
    if "between" in entry:
        start, end = entry["between"]
        return Path_(between=(_keys(start, where), _keys(end, where)))
    if "sum" in entry:
        return Path_(sum=tuple(_keys(k, where) for k in entry["sum"]))
    if "sum_keys" in entry:
        spec = entry["sum_keys"]
        return Path_(sum_keys=(_keys(spec["path"], where), str(spec["containing"]).lower()))
    mapping = tuple((str(k).lower(), None if v is None else str(v)) for k, v in (entry.get("map") or {}).items())
    scale = entry.get("scale")
    unless = _condition(entry["unless"], where, {}) if entry.get("unless") else None
    value = entry.get("value")
    return Path_(_keys(entry.get("path"), where), float(scale) if scale is not None else None, mapping,
                 str(entry.get("strip") or ""), None if value is None else str(value), unless)


def _condition(raw, where: str, vocab_cond: dict[str, "Condition"]) -> Condition:
    if isinstance(raw, str) and raw.startswith("@"):
        if raw[1:] not in vocab_cond:
            raise DeclarationError(f"{where}: {raw} names no vocabulary condition")
        return vocab_cond[raw[1:]]
    if not isinstance(raw, dict):
        raise DeclarationError(f"{where}: a condition is a mapping, got {raw!r}")
    unknown = set(raw) - {"path", "in", "exists", "absent", "any", "all", "not"}
    if unknown:
        raise DeclarationError(f"{where}: unknown condition key(s) {sorted(unknown)}")
    if "not" in raw:
        inner = _condition(raw["not"], where, vocab_cond)
        return Condition(all=(inner,), negate=True)
    if "any" in raw or "all" in raw:
        return Condition(any=tuple(_condition(c, where, vocab_cond) for c in raw.get("any") or ()),
                         all=tuple(_condition(c, where, vocab_cond) for c in raw.get("all") or ()))
    values = tuple(str(v).lower() for v in raw.get("in") or ())
    if not values and not raw.get("exists"):
        raise DeclarationError(f"{where}: a path condition needs `in: [...]` or `exists: true`")
    return Condition(path=_keys(raw.get("path"), where), values=values, absent=bool(raw.get("absent")))


def _expand(template: str, name: str) -> str:
    return template.replace("{}", name)


def _source(path: Path, order: int) -> Source:
    raw = _load_yaml(path)
    where = path.name
    name, stream = raw.get("name"), raw.get("stream")
    if name != path.stem:
        raise DeclarationError(f"{where}: name must be {path.stem!r}")
    if stream not in STREAMS:
        raise DeclarationError(f"{where}: stream must be one of {STREAMS}")
    if raw.get("record", "json") not in RECORDS:
        raise DeclarationError(f"{where}: record must be one of {RECORDS}")
    canon = streams()[stream].fields

    # A vocabulary's names for a key, placed where the source keeps attributes (each template in turn).
    vocab_fields: dict[str, list[Path_]] = {}
    vocab_cond: dict[str, Condition] = {}
    vocab_spec = raw.get("vocabulary")
    if vocab_spec:
        vocab = vocabularies().get(vocab_spec.get("name"))
        if vocab is None:
            raise DeclarationError(f"{where}: unknown vocabulary {vocab_spec.get('name')!r}")
        templates = vocab_spec.get("at") or ["{}"]
        for key, names in (vocab.get("fields") or {}).items():
            if key not in canon:
                raise DeclarationError(f"vocabularies/{vocab['name']}.yaml: unknown key {key!r}")
            entries = []
            # a key spans inherit (user, session, feature) is also looked for where `inherit_at` says (a resource)
            for template in templates + (vocab_spec.get("inherit_at") or [] if canon[key].inherit else []):
                for entry in names:
                    if isinstance(entry, str):
                        entries.append(_path(_expand(template, entry), where))
                    else:
                        e = dict(entry)
                        e["path"] = _expand(template, e["path"])
                        entries.append(_path(e, where))
            vocab_fields[key] = entries
        # conditions use the first template only: a record's own attributes, not its resource's
        first = templates[0]

        def expand_cond(c):
            if isinstance(c, dict):
                return {k: (_expand(first, v) if k == "path" else
                            [expand_cond(x) for x in v] if k in ("any", "all") else
                            expand_cond(v) if k == "not" else v) for k, v in c.items()}
            return c
        if vocab.get("model_call"):
            vocab_cond[vocab["name"]] = _condition(expand_cond(vocab["model_call"]), where, {})

    fields: dict[str, tuple[Path_, ...]] = {}
    declared = raw.get("fields") or {}
    for key in declared:
        if key not in canon:
            raise DeclarationError(f"{where}: fields.{key} is not a canonical key of the {stream} stream")
    for key in canon:
        entries = declared.get(key, ["@" + vocab_spec["name"]] if vocab_spec and key in vocab_fields else [])
        paths: list[Path_] = []
        for entry in entries if isinstance(entries, list) else [entries]:
            if isinstance(entry, str) and entry.startswith("@"):
                if not vocab_spec or entry[1:] != vocab_spec["name"]:
                    raise DeclarationError(f"{where}: fields.{key} refers to {entry}, not this source's vocabulary")
                paths += vocab_fields.get(key, [])
            else:
                paths.append(_path(entry, f"{where}: fields.{key}"))
        if paths:
            fields[key] = tuple(dict.fromkeys(paths))  # a name listed twice is read once
    for key, f in canon.items():
        if f.required and key not in fields:
            raise DeclarationError(f"{where}: required key {key!r} has no path")
    recognize = _condition(raw["recognize"], f"{where}: recognize", vocab_cond) if raw.get("recognize") else None
    keep = _condition(raw["keep"], f"{where}: keep", vocab_cond) if raw.get("keep") else None
    skip_reason = tuple(_path(e, f"{where}: skip_reason") for e in raw.get("skip_reason") or ())
    return Source(name=name, stream=stream, title=raw.get("title", name), record=raw.get("record", "json"),
                  example=raw.get("example", ""), priority=int(raw.get("priority", order)), recognize=recognize,
                  keep=keep, skip_reason=skip_reason, fields=fields, reads=raw.get("reads", ""),
                  skips=raw.get("skips", ""), file=where, naive_timezone=raw.get("naive_timestamps_timezone"))


@cache
def sources() -> tuple[Source, ...]:
    """Every declared source, in recognition order (priority). Each stream has exactly one fallback source (no
    `recognize`): what a file is read as when no other declaration recognizes it."""
    files = sorted(p for p in HERE.glob("*.yaml") if p.name != "fields.yaml")
    out = sorted((_source(p, i) for i, p in enumerate(files)), key=lambda s: (s.priority, s.name))
    for stream in STREAMS:
        fallbacks = [s.name for s in out if s.stream == stream and s.recognize is None]
        if len(fallbacks) != 1:
            raise DeclarationError(f"stream {stream} needs exactly one source without `recognize`, has {fallbacks}")
    return tuple(out)


def for_stream(stream: str) -> list[Source]:
    return [s for s in sources() if s.stream == stream]


def fallback(stream: str) -> Source:
    return next(s for s in for_stream(stream) if s.recognize is None)


def by_name(name: str) -> Source:
    for s in sources():
        if s.name == name:
            return s
    raise KeyError(name)


@cache
def top_level_keys(stream: str) -> frozenset[str]:
    """Every key any source of the stream reads at the top of a record: a CSV header must name one of them."""
    return frozenset(k[0] for s in for_stream(stream)
                     for k in s.key_paths() + (s.recognize.paths() if s.recognize else []))
