"""Env params by name: dotted paths into the params pytree, and legacy aliases.

A composed env's params nest (``task.target_rate``, ``actuator.i_max``,
``objective.current_power``); a hand-written env's are flat (``i_max``). Both
are addressed by dotted names here, and an env may publish aliases
(``env.param_aliases()``, e.g. ``{"i_max": "actuator.high"}``) so the names its
users and recorded runs know keep working.
"""

import dataclasses
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from neuroctl.errors import ConfigError, bad_value


def numeric_params(params: Any, prefix: str = "") -> dict[str, Any]:
    """Every numeric field of `params` (scalar or array), by dotted name.

    Nested modules are walked; sequences (e.g. a network's per-cell lists) are
    not, so the names stay few.
    """
    out = {}
    for field in dataclasses.fields(params):
        if field.metadata.get("static", False):
            continue  # structure (sites, step counts), not a number to tune
        value = getattr(params, field.name)
        name = f"{prefix}{field.name}"
        if isinstance(value, eqx.Module):
            out.update(numeric_params(value, f"{name}."))
        elif value is not None and _is_number(value):
            out[name] = value
    return out


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(
        value, (int, float, np.ndarray, np.generic, jax.Array)
    ):
        return False
    return np.issubdtype(np.asarray(value).dtype, np.number)


def get_param(params: Any, name: str) -> Any:
    """The leaf of `params` at dotted `name`."""
    for part in name.split("."):
        params = getattr(params, part)
    return params


def override_params(params: Any, overrides: dict[str, float], aliases=None):
    """`params` with numeric fields set by dotted name (or an alias).

    A field holding an array is filled with the value (e.g. every site's bound).

    Args:
        params: the env's params (e.g. ``env.default_params``).
        overrides: ``{name: value}``, e.g. ``{"task.input_gain": 0.3}``.
        aliases: ``{alias: dotted name}`` (``env.param_aliases()``).

    Raises:
        ConfigError: an unknown name (listing the valid ones), a non-number, or a
            value the param's class refuses (its own check, e.g. ``rate_tau > 0``
            [ms], re-run on the changed modules).
    """
    aliases = aliases or {}
    valid = numeric_params(params)
    for name, value in overrides.items():
        path = aliases.get(name, name)
        if path not in valid:
            raise bad_value(
                f"env param {name!r}",
                value,
                f"one of the env's numeric params {sorted(valid)}"
                + (f" or an alias {sorted(aliases)}" if aliases else ""),
                "check the name (see the env's Params class).",
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad_value(f"env param {name!r}", value, "a number", "pass a number.")
        old = valid[path]
        new = float(value) if np.ndim(old) == 0 else jnp.full(np.shape(old), value)
        params = eqx.tree_at(lambda p, q=path: get_param(p, q), params, new)
        try:
            recheck(params, path)
        except ConfigError as err:
            alias = f" (alias of {path!r})" if path != name else ""
            raise ConfigError(f"env param {name!r}{alias} = {value!r}: {err}") from None
    return params


def recheck(params: Any, name: str) -> None:
    """Re-run the checks of every module on the dotted path to `name`.

    `eqx.tree_at` skips ``__check_init__``; this runs it (of each class in the
    module's MRO, as equinox does on construction) on the modules holding `name`.

    Raises:
        ConfigError: a module refuses its new value.
    """
    module = params
    for part in name.split("."):
        if isinstance(module, eqx.Module):
            for cls in type(module).__mro__:
                check = cls.__dict__.get("__check_init__")
                if check is not None:
                    check(module)
        module = getattr(module, part)


__all__ = ["get_param", "numeric_params", "override_params", "recheck"]
