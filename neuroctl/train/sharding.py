"""Data parallelism: a batch of episodes (or trials) split over devices and hosts.

Training and evaluation are data parallel: every episode of a batch is independent,
so a 1-D mesh with one axis, ``"data"`` (`DATA`), splits the batch over devices,
each running ``batch / devices`` episodes of the same vmapped code, and the batch
mean (loss, gradient, metrics) is one all-reduce. `data_mesh` builds the mesh,
`map_batch` is ``jax.vmap`` over a batch, run under `jax.shard_map` when given a
mesh. Parameters and optimiser state are replicated (``P()``).

Several hosts: call `initialize_distributed` first on every process (the same
script everywhere; under Slurm or Open MPI it needs no arguments), then build the
mesh over ``jax.devices()`` — every process's devices. Values every process
computes alike (parameters, the keys drawn inside a jitted train step) are made
global with `replicate`; data each process holds only its part of goes through
`global_batch` (``jax.make_array_from_process_local_data``).

Results equal the one-device ones up to float rounding: the per-episode code is
the same, but XLA fuses a batch of ``batch / devices`` episodes differently and
sums the partial gradients of the devices in another order (measured in
tests/train/test_sharding.py).
"""

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from neuroctl.errors import bad_value, check_int

DATA = "data"  # the mesh axis the batch is split over

PyTree = Any


def data_mesh(n_devices: int | None = None) -> Mesh:
    """A 1-D mesh, axis `DATA`, over the first `n_devices` of ``jax.devices()``.

    ``None``: all of them (every process's, after `initialize_distributed`).
    """
    devices = jax.devices()
    n = len(devices) if n_devices is None else n_devices
    check_int("devices", n, 1)
    if n > len(devices):
        raise bad_value(
            "devices",
            n,
            f"at most the {len(devices)} {devices[0].platform} device(s) JAX sees",
            "use fewer, or on CPU set XLA_FLAGS=--xla_force_host_platform_device_"
            f"count={n} before JAX starts (several hosts: initialize_distributed).",
        )
    return jax.make_mesh(
        (n,), (DATA,), axis_types=(AxisType.Auto,), devices=devices[:n]
    )


def check_divisible(field: str, batch: int, mesh: Mesh | int | None) -> None:
    """Raise `ConfigError` unless `batch` splits evenly over `mesh`'s devices.

    `mesh` may be a device count; None is one device.
    """
    n = mesh.size if isinstance(mesh, Mesh) else (mesh or 1)
    if batch % n == 0:
        return
    fit = n * max(1, round(batch / n))
    raise bad_value(
        field,
        batch,
        f"a multiple of the {n} devices of the mesh",
        f"use {field}={fit}, or a device count that divides {batch}.",
    )


def map_batch(fn: Callable, mesh: Mesh | None = None, field: str = "batch"):
    """``(shared, batch) -> vmap(fn(shared, ·))(batch)``, split over `mesh`.

    `batch` is a pytree with a leading batch axis; `shared` (parameters) is
    replicated. With a mesh, each device maps its ``batch / devices`` slice and the
    outputs stay split over `DATA` (a later mean is one all-reduce); gradients
    with respect to `shared` are summed over devices by shard_map's transpose.
    `field` names the batch in the error raised when it does not split evenly.
    """

    def local(shared, batch):
        return jax.vmap(fn, in_axes=(None, 0))(shared, batch)

    if mesh is None:
        return local

    def mapped(shared, batch):
        check_divisible(field, jax.tree.leaves(batch)[0].shape[0], mesh)
        # check_vma=False: the env's scan carries start from replicated constants
        # and become device-varying; the code is written for one episode and needs
        # no pcast (gradients equal the one-device ones: tests/train)
        return jax.shard_map(
            local,
            mesh=mesh,
            in_specs=(P(), P(DATA)),
            out_specs=P(DATA),
            check_vma=False,
        )(shared, batch)

    return mapped


def shard_batch(tree: PyTree, mesh: Mesh) -> PyTree:
    """`tree` (leading batch axis, on this one process) split over `DATA`."""
    return jax.device_put(tree, NamedSharding(mesh, P(DATA)))


def replicate(tree: PyTree, mesh: Mesh) -> PyTree:
    """`tree` (the same on every process) replicated on every device of `mesh`."""
    sharding = NamedSharding(mesh, P())
    return jax.tree.map(lambda x: _global(sharding, np.asarray(x)), tree)


def global_batch(local: PyTree, mesh: Mesh) -> PyTree:
    """The global batch whose `DATA` slices on this process's devices are `local`.

    Each process passes its own consecutive part (process 0 the first); the global
    batch axis is their concatenation (``jax.make_array_from_process_local_data``).
    PRNG key arrays are carried as their raw data and rewrapped.
    """
    sharding = NamedSharding(mesh, P(DATA))

    def one(x):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            data = _global(sharding, np.asarray(jax.random.key_data(x)))
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        return _global(sharding, np.asarray(x))

    return jax.tree.map(one, local)


def _global(sharding: NamedSharding, local: np.ndarray) -> jax.Array:
    return jax.make_array_from_process_local_data(sharding, local)


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_ids: int | list[int] | None = None,
    cpu_collectives: str | None = None,
) -> tuple[int, int]:
    """Join this process to a multi-process JAX run; ``(process_index, count)``.

    Call it on every process before any other JAX work. Under Slurm (``srun``) or
    Open MPI every argument is detected from the environment; elsewhere give the
    coordinator's ``host:port`` (process 0's), the process count and this one's
    id. `cpu_collectives` (``"gloo"``) lets processes without accelerators
    exchange data (CPU all-reduce); leave it None on GPU/TPU.
    """
    if cpu_collectives is not None:
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        local_device_ids=local_device_ids,
    )
    return jax.process_index(), jax.process_count()


__all__ = [
    "DATA",
    "check_divisible",
    "data_mesh",
    "global_batch",
    "initialize_distributed",
    "map_batch",
    "replicate",
    "shard_batch",
]
