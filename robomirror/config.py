"""Helpers shared by the stages' typed configs: type checks, strict construction from dicts."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

from robomirror.errors import ConfigError

T = TypeVar("T")
_TYPES = {"float": (int, float), "int": int, "bool": bool, "str": str}


def type_problems(cfg: Any) -> list[str]:
    """Fields whose value does not have the annotated plain type (bool is not an int here)."""
    out = []
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        want = _TYPES.get(str(f.type))
        if want and (not isinstance(v, want) or (isinstance(v, bool) and str(f.type) != "bool")):
            out.append(f"{f.name}: expected {f.type}, got {type(v).__name__} {v!r}")
    return out


def from_dict(cls: type[T], d: dict[str, Any], stage: str) -> T:
    """Build a config, refusing unknown keys with the list of valid ones."""
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"unknown {stage} config keys {unknown}; valid keys: {sorted(known)}")
    return cls(**d)
