"""Exceptions raised by neuroctl, all subclasses of the built-in ones users expect."""


class ConfigError(ValueError):
    """A model, network or run configuration is invalid.

    Messages name the field, the value received and how to fix it.
    """


def bad_value(field: str, value: object, expected: str, fix: str) -> ConfigError:
    """Build a `ConfigError` in the house format: field, value, expectation, fix."""
    return ConfigError(
        f"{field}: got {value!r} (type {type(value).__name__}), expected {expected}; "
        f"{fix}"
    )


def check_int(field: str, value: object, low: int, high: int | None = None) -> None:
    """Raise `ConfigError` unless `value` is an int in ``[low, high]`` (bools refused).

    For command-line options: `field` is the option as typed (``--trials``).
    """
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
    if ok and (high is None or value <= high):
        return
    span = f">= {low}" if high is None else f"in [{low}, {high}]"
    raise bad_value(field, value, f"an integer {span}", f"e.g. {field} {max(low, 1)}.")


def check_param(field: str, value: object, low: float | None = None, strict=False):
    """Raise `ConfigError` unless `value` is finite (and ``>= low``, or ``> low``).

    For model parameters given as numbers or arrays; traced values (inside `jit` or
    `vmap`) are left alone.
    """
    import jax
    import numpy as np

    try:
        x = np.asarray(value, dtype=float)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return
    except (TypeError, ValueError):
        raise bad_value(field, value, "a real number or array", "fix it.") from None
    ok = np.all(np.isfinite(x))
    if low is not None:
        ok = ok and bool(np.all(x > low) if strict else np.all(x >= low))
    if not ok:
        bound = "" if low is None else f" {'>' if strict else '>='} {low:g}"
        raise bad_value(field, value, f"finite values{bound}", f"fix {field}.")
