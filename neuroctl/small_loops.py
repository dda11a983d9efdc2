"""Opt-in: XLA:CPU compiles each small time loop into one function.

XLA's CPU runtime launches every fused kernel of a loop body separately, about
90 ns each on this project's machine; the paper network's step is 75 kernels, so
at batch 1 the launches are most of its 6.8 µs. XLA:CPU also has a pass
(``SmallWhileLoopHoistingPass``) that compiles a whole ``while`` loop into a single
function when one iteration touches fewer bytes than a threshold and the loop
holds no scatter, sort or library call. The threshold is 1 KiB by default, so no
solver loop qualifies; `enable` raises it to `BYTES` (2 MiB). While it is on, the
solver also avoids scatters: whatever it sums per node (synaptic currents, axial
currents of long cables, electrode currents at scattered nodes, the tree
elimination's irregular levels) is a segmented prefix sum, and gathers get a
scatter-free transpose (`solver._take`), so the forward and the backward loops
of small networks of any morphology qualify.

When to use it (this machine, pinned, interleaved with the default; results/
benchmarks.md, "Small loops"): work at batch 1 to about 8 trials on networks up to
a few hundred compartments, such as single simulations, JVP and Lyapunov
analysis, parameter fits. The paper network's forward pass at batch 1 runs 2.1–2.2x
as fast (float32 and float64; 3.7–4.1x Jaxley 0.14 over the last three runs), its
gradient 1.7x, 10 HH cells 2.1x, 100 cells 1.0–1.1x, batch 8 1.1x, 100 batched
ball-and-sticks 1.5x (23x NEURON).
Not for policy training or large batches and networks: where a loop is too large
to qualify, the scatter-free sums cost kernels, so the paper network at batch
64–1,024 runs 1.3–1.4x slower, 10,000 HH cells 1.1x (1.5–2x on an AMD EPYC); and a
BPTT policy iteration (8 trials, float64, EvidenceStim-v0), whose loops do
qualify, runs 1.3x slower. Results equal the
default path to float rounding (tests/biophysics/test_small_loops.py).

Off by default, since it changes how every small loop of the process compiles,
the user's own included. Turn it on before JAX starts, either with the
environment variable ``NEUROCTL_XLA_SMALL_LOOPS=1`` (read at ``import neuroctl``)
or by calling `enable` first thing. CPU only: on a GPU nothing changes.
"""

import os
import re
import warnings

from neuroctl.errors import ConfigError

ENV = "NEUROCTL_XLA_SMALL_LOOPS"
OPTION = "xla_cpu_small_while_loop_byte_threshold"
BYTES = 2 << 20  # loops touching fewer bytes per iteration compile as one function
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
            f"[bytes]; e.g. {BYTES} (2 MiB)."
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
    os.environ["XLA_FLAGS"] = xla_flags(
        os.environ.get("XLA_FLAGS", ""), threshold_bytes
    )


def enable_from_env() -> None:
    """`enable` if ``NEUROCTL_XLA_SMALL_LOOPS`` is set (not "" or "0").

    Called by ``import neuroctl``. With JAX already running it warns instead of
    raising, so the import does not fail.
    """
    if os.environ.get(ENV, "0") in ("", "0"):
        return
    try:
        enable()
    except ConfigError as err:
        warnings.warn(str(err), stacklevel=3)


def xla_flags(flags: str = "", threshold_bytes: int = BYTES) -> str:
    """XLA_FLAGS `flags` with the small-loop threshold [bytes] joined.

    It joins the flags' backend extra options, or is added as one.
    """
    option = f"{OPTION}={threshold_bytes}"
    m = re.search(r"--xla_backend_extra_options=(\S*)", flags)
    if m is None:
        return f"{flags} {_EXTRA}{option}".strip()
    joined = f"{m.group(1)},{option}" if m.group(1) else option
    return flags[: m.start()] + _EXTRA + joined + flags[m.end() :]
