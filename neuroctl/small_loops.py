"""Opt-in: XLA:CPU compiles each small time loop into one function.

XLA's CPU runtime launches every fused kernel of a loop body separately, about
90 ns each on this project's machine; the paper network's step is 75 kernels, so
at batch 1 the launches are most of its 6.8 µs. XLA:CPU also has a pass
(``SmallWhileLoopHoistingPass``) that compiles a whole ``while`` loop into a single
function when the loop touches fewer bytes than a threshold and holds no scatter,
sort or library call. Its threshold is 1 KiB by default, so no solver loop
qualifies; `enable` raises it to `BYTES` (1 MiB). While it is on, the solver sums
synaptic currents per node without a scatter (`solver._synaptic`), so the
paper network's step at batch 1 and 8 and small networks of HH cells qualify.

Measured on this project's machine (results/benchmarks.md, "Small loops"): the
forward pass of the paper network at batch 1 about 2x as fast, at batch 8 the same
speed, at batch 64 a few % slower (too large to qualify; the scatter-free sum costs
a few kernels). Gradients: the backward loops keep scatters (the transposes of
gathers) and do not qualify. Results equal the default path to float rounding
(tests/test_small_loops.py).

Off by default: it changes how every small loop of the process compiles, the
user's own included. Turn it on before JAX starts, either with the environment
variable ``NEUROCTL_XLA_SMALL_LOOPS=1`` (read at ``import neuroctl``) or by
calling `enable` first thing. CPU only: on a GPU nothing changes.
"""

import os
import re

from neuroctl.errors import ConfigError

ENV = "NEUROCTL_XLA_SMALL_LOOPS"
OPTION = "xla_cpu_small_while_loop_byte_threshold"
BYTES = 1 << 20  # loops touching fewer bytes per iteration compile as one function
_EXTRA = "--xla_backend_extra_options="


def active() -> bool:
    """Whether XLA_FLAGS carries the small-loop threshold.

    Set by `enable`, or by hand before JAX started.
    """
    return OPTION in os.environ.get("XLA_FLAGS", "")


def enable(threshold_bytes: int = BYTES) -> None:
    """Add the small-loop threshold [bytes] to XLA_FLAGS; before JAX starts.

    Keeps every other flag, and any ``--xla_backend_extra_options`` already given
    (the threshold joins them). A threshold already present is left as it is.

    Raises:
        ConfigError: JAX has already started its backends (XLA reads XLA_FLAGS
            once), or `threshold_bytes` is not a positive int.
    """
    if (
        isinstance(threshold_bytes, bool)
        or not isinstance(threshold_bytes, int)
        or threshold_bytes < 1
    ):
        raise ConfigError(
            f"threshold_bytes: got {threshold_bytes!r}, expected a positive int "
            f"[bytes]; e.g. {BYTES} (1 MiB)."
        )
    if active():
        return
    from jax._src import xla_bridge  # no public query of this in jax 0.10

    if xla_bridge.backends_are_initialized():
        raise ConfigError(
            "neuroctl.small_loops.enable: JAX has already started, and XLA reads "
            "XLA_FLAGS only once; call it before any JAX computation, or start "
            f"Python with {ENV}=1 (read at `import neuroctl`)."
        )
    os.environ["XLA_FLAGS"] = _with_option(
        os.environ.get("XLA_FLAGS", ""), f"{OPTION}={threshold_bytes}"
    )


def _with_option(flags: str, option: str) -> str:
    """`flags` with `option` joined to its backend extra options (or added)."""
    m = re.search(r"--xla_backend_extra_options=(\S*)", flags)
    if m is None:
        return f"{flags} {_EXTRA}{option}".strip()
    joined = f"{m.group(1)},{option}" if m.group(1) else option
    return flags[: m.start()] + _EXTRA + joined + flags[m.end() :]
