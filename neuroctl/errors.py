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
