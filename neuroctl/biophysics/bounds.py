"""Plausible ranges of mechanism parameters, checked when a mechanism is built.

Every float parameter of a channel, of `CalciumDynamics` and of a synapse has a kind
below; constructing the mechanism with a value outside its kind's range (or a
non-finite one) raises `ConfigError` naming the field, the value, the range and an
example. The ranges are generous (orders of magnitude around every published model
that neuroctl ships: Hodgkin–Huxley, Hay et al. 2011, Rubin & Terman 2004) and are
chosen so that every accepted value simulates finitely, in float32 too: products
such as ``g · e`` [µA/cm²] stay below ~1e9, divisors stay away from 0.

=====================  ====================  =========================================
kind                   range                 used for
=====================  ====================  =========================================
conductance density    [0, 1e6] mS/cm²       channel ``g…`` (1e6 mS/cm² = 1000 S/cm²)
point conductance      [0, 1e3] µS           synaptic maximal conductances
potential              [-1e3, 1e3] mV        reversal potentials, half-activations
slope                  [1e-3, 1e3] mV        sigmoid widths (a divisor)
rate                   [0, 1e5] 1/ms         rates that may be 0 (a multiplier)
positive rate          [1e-9, 1e5] 1/ms      rates that must be > 0
time constant          [1e-3, 1e9] ms        decay times (a divisor)
shell depth            [1e-3, 1e5] µm        as `Morphology` lengths (a divisor)
gain                   (0, 1e3] 1            e.g. calcium's free fraction γ
concentration          [1e-9, 1e3] mM        concentrations that must be > 0
floor concentration    [0, 1e3] mM           concentrations that may be 0
current density        [-1e4, 1e4] µA/cm²    applied currents
temperature            [0, 100] °C           liquid water
=====================  ====================  =========================================

Values inside a traced computation (`jit`, `vmap`, `grad`) cannot be checked here;
NumPy scalars and arrays (one value per compartment) are checked entry by entry.
"""

import dataclasses
from dataclasses import dataclass

import jax
import numpy as np

from neuroctl.errors import bad_value


@dataclass(frozen=True)
class Bound:
    """A closed range ``[low, high]`` (``(low, high]`` if `open_low`) in `unit`."""

    kind: str
    low: float
    high: float
    unit: str
    open_low: bool = False

    def describe(self) -> str:
        """E.g. ``"finite values in [0, 1e+06] mS/cm² (a conductance density)"``."""
        left = "(" if self.open_low else "["
        unit = "" if self.unit == "1" else f" {self.unit}"
        return (
            f"finite values in {left}{self.low:g}, {self.high:g}]{unit} (a {self.kind})"
        )

    def contains(self, x: np.ndarray) -> bool:
        """Whether every entry of `x` is finite and within the range."""
        above = x > self.low if self.open_low else x >= self.low
        return bool(np.all(np.isfinite(x)) and np.all(above) and np.all(x <= self.high))


CONDUCTANCE_DENSITY = Bound("conductance density", 0.0, 1e6, "mS/cm²")
POINT_CONDUCTANCE = Bound("point conductance", 0.0, 1e3, "µS")
POTENTIAL = Bound("potential", -1e3, 1e3, "mV")
SLOPE = Bound("slope", 1e-3, 1e3, "mV")
RATE = Bound("rate", 0.0, 1e5, "1/ms")
POSITIVE_RATE = Bound("positive rate", 1e-9, 1e5, "1/ms")
TIME_CONSTANT = Bound("time constant", 1e-3, 1e9, "ms")
DEPTH = Bound("shell depth", 1e-3, 1e5, "µm")
GAIN = Bound("gain", 0.0, 1e3, "1", open_low=True)
CONCENTRATION = Bound("concentration", 1e-9, 1e3, "mM")
FLOOR_CONCENTRATION = Bound("concentration", 0.0, 1e3, "mM")
CURRENT_DENSITY = Bound("current density", -1e4, 1e4, "µA/cm²")
TEMPERATURE = Bound("temperature", 0.0, 100.0, "°C")


def by_name(name: str, explicit: dict, conductance: Bound) -> Bound | None:
    """The range of a mechanism field `name`.

    `explicit` (a class's ``param_bounds``) first, else by the name:
    ``temperature``; ``g…`` a `conductance`; ``e…`` a `POTENTIAL`; other fields
    need only be finite (None).
    """
    if name in explicit:
        return explicit[name]
    if name == "temperature":
        return TEMPERATURE
    if name.startswith("g"):
        return conductance
    if name.startswith("e"):
        return POTENTIAL
    return None


def check_bounded(field: str, value: object, bound: Bound | None, fix: str = ""):
    """Raise `ConfigError` unless `value` is real, finite and within `bound`.

    With `bound` None only finiteness is checked. Traced values are left alone.

    Args:
        field: the name to report, e.g. ``"HH.gnabar"``.
        value: a number or an array (one entry per compartment or connection).
        bound: the range, or None.
        fix: how to fix it (default: ``"fix <field>."``).
    """
    try:
        x = np.asarray(value, dtype=float)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return
    except (TypeError, ValueError):
        raise bad_value(
            field, value, "a real number or array", fix or f"pass a number as {field}."
        ) from None
    ok = bool(np.all(np.isfinite(x))) if bound is None else bound.contains(x)
    if not ok:
        expected = "finite values" if bound is None else bound.describe()
        raise bad_value(field, value, expected, fix or f"fix {field}.")


def plain_float(x: object) -> object:
    """A NumPy real scalar as a Python float; anything else unchanged.

    The converter of static float fields (temperatures): a Python float stays
    weakly typed, so a float32 simulation stays float32.
    """
    if isinstance(x, (np.floating, np.integer)):
        return float(x)
    return x


def check_mechanism(module, bound_of) -> None:
    """`check_bounded` on every field of the dataclass `module`, static ones too.

    `bound_of(name)` gives each field's `Bound` (None: finiteness only); a message
    suggests the field's default, e.g. ``pass e.g. HH(gnabar=120.0) [mS/cm²].``
    """
    cls = type(module).__name__
    for f in dataclasses.fields(module):
        bound = bound_of(f.name)
        fix = f"fix {cls}.{f.name}."
        if f.default is not dataclasses.MISSING:
            unit = "" if bound is None or bound.unit == "1" else f" [{bound.unit}]"
            fix = f"pass e.g. {cls}({f.name}={f.default!r}){unit}."
        check_bounded(f"{cls}.{f.name}", getattr(module, f.name), bound, fix)


__all__ = [
    "CONCENTRATION",
    "CONDUCTANCE_DENSITY",
    "CURRENT_DENSITY",
    "DEPTH",
    "FLOOR_CONCENTRATION",
    "GAIN",
    "POINT_CONDUCTANCE",
    "POSITIVE_RATE",
    "POTENTIAL",
    "RATE",
    "SLOPE",
    "TEMPERATURE",
    "TIME_CONSTANT",
    "Bound",
    "check_bounded",
    "check_mechanism",
    "plain_float",
]
