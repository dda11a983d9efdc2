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
