"""TOML text from nested dicts (the reader is the standard library's `tomllib`).

Values: str, bool, int, float (inf/nan included), lists of those, and dicts
(written as ``[dotted.tables]``). Enough for specs; `tomllib.loads(dumps(d)) == d`
(tuples come back as lists).
"""

import json
import math
from typing import Any

from neuroctl.errors import bad_value


def _value(key: str, v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return repr(v) if math.isfinite(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, str):
        return json.dumps(v)  # a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(key, x) for x in v) + "]"
    raise bad_value(
        f"TOML value {key!r}", v, "str, bool, int, float, list or dict", "convert it."
    )


def _key(k: str) -> str:
    bare = k.replace("_", "").replace("-", "").isalnum() and k.isascii()
    return k if bare else json.dumps(k)


def dumps(d: dict, _prefix: str = "") -> str:
    """TOML text of the nested dict `d` (scalars first, then each sub-table)."""
    lines, tables = [], []
    for k, v in d.items():
        if isinstance(v, dict):
            tables.append((k, v))
        elif v is not None:
            lines.append(f"{_key(k)} = {_value(k, v)}")
    for k, v in tables:
        name = f"{_prefix}{_key(k)}"
        body = dumps(v, f"{name}.").strip("\n")
        lines += ["", f"[{name}]"] + ([body] if body else [])
    return "\n".join(lines).strip("\n") + "\n"


__all__ = ["dumps"]
