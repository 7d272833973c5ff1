"""Severity and thresholds of the checks: the packaged reference/validation.yaml, overridden key by key by
<data dir>/reference/validation.yaml when that file exists."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any


from aiso_pipeline.config import DataDir, read_settings_yaml
from aiso_pipeline.errors import AisoError
from aiso_pipeline.validation.checks import CHECKS

DEFAULTS = Path(__file__).resolve().parent.parent / "reference" / "validation.yaml"
SEVERITIES = ("ERROR", "WARN")


def _read(path: Path) -> dict:
    loaded = read_settings_yaml(path) or {}
    if not isinstance(loaded, dict):
        raise AisoError(f"{path}: expected a mapping of stream -> check -> settings: fix the file or remove it")
    return loaded


def _merge(base: dict, override: dict, path: Path, where: str = "") -> dict:
    out = dict(base)
    for key, value in override.items():
        if key not in base:
            known = ", ".join(sorted(base))
            raise AisoError(f"{path}: unknown key {where}{key!r} (known here: {known}): fix the spelling")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise AisoError(f"{path}: {where}{key} must be a mapping, got {value!r}")
            out[key] = _merge(base[key], value, path, f"{where}{key}.")
        else:
            out[key] = value
    return out


def _validate(cfg: dict, path: Path) -> dict:
    for stream, checks in CHECKS.items():
        for check in checks:
            settings = cfg[stream][check.name]
            severity = str(settings.get("severity", "")).upper()
            if severity not in SEVERITIES:
                raise AisoError(f"{path}: {stream}.{check.name}.severity must be ERROR or WARN, "
                                f"got {settings.get('severity')!r}")
            settings["severity"] = severity
            for key, value in settings.items():
                if key in ("severity", "values", "key_patterns"):
                    continue
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise AisoError(f"{path}: {stream}.{check.name}.{key} must be a number >= 0, got {value!r}")
                if key.startswith("max_share") and value > 1:
                    raise AisoError(f"{path}: {stream}.{check.name}.{key} is a fraction in [0, 1], got {value!r}")
    patterns = cfg["inference"]["usage_keys_unmapped"]["key_patterns"]
    if not isinstance(patterns, list) or not patterns or not all(isinstance(v, str) and v for v in patterns):
        raise AisoError(f"{path}: inference.usage_keys_unmapped.key_patterns must be a non-empty list of regular "
                        f"expressions")
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as e:
            raise AisoError(f"{path}: inference.usage_keys_unmapped.key_patterns: {pattern!r} is not a regular "
                            f"expression ({e})") from None
    values = cfg["inference"]["status_accepted_values"]["values"]
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise AisoError(f"{path}: inference.status_accepted_values.values must be a non-empty list of strings")
    if not isinstance(cfg["examples"], int) or isinstance(cfg["examples"], bool) or not 0 <= cfg["examples"] <= 100:
        raise AisoError(f"{path}: examples must be an integer in [0, 100], got {cfg['examples']!r}")
    return cfg


def load(data: DataDir | None = None) -> dict[str, Any]:
    """{'examples': n, '<stream>': {'<check>': {'severity': 'ERROR'|'WARN', ...thresholds}}}."""
    cfg = _validate(_read(DEFAULTS), DEFAULTS)
    override = data.reference / "validation.yaml" if data is not None else None
    if override is not None and override.exists():
        cfg = _validate(_merge(cfg, _read(override), override), override)
    return cfg


def defaults() -> dict[str, Any]:
    """The packaged defaults (for descriptions in the Dagster UI)."""
    return load(None)
