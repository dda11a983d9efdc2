"""Which components of a `neuroctl.biophysics.State` carry dynamics.

The flattened solver state (`ravel_pytree` order ``v, gates, cai, eca, syn``) holds
more than the ODE's independent variables:

* ``v`` at zero-area branch points is algebraic: the voltage that balances the axial
  currents of its neighbours (backward Euler: multiplier 0, exponent -inf;
  Crank-Nicolson: multiplier -1, exponent 0). It drives nothing else.
* ``cai`` and ``eca`` in compartments without calcium dynamics are constants carried
  from step to step (multiplier 1, exponent 0).
* ``eca`` in compartments with calcium dynamics is Nernst of ``cai``: one multiplier
  0 each. It feeds back (calcium current), so it is kept.

`solver_state_mask` drops the first two kinds, which is exact for the Lyapunov
spectrum and the Jacobian sub-block (see `neuroctl.analysis.lyapunov`).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Bool

from neuroctl.biophysics import Network, State


def solver_state_mask(net: Network, state: State) -> Bool[np.ndarray, " n"]:
    """Boolean mask over ``ravel_pytree(state)[0]``: True for dynamic components.

    Args:
        net: the compiled network.
        state: a state of it (only shapes are used).

    Returns:
        True for compartment voltages, every gate and synaptic state, and ``cai``
        and ``eca`` where the compartment has calcium dynamics; False for
        branch-point voltages and constant ``cai``/``eca``.
    """
    calcium = np.zeros(net.n_nodes, bool)
    for b in net.calcium_block:
        calcium[b.lo : b.hi] = b.mask
    marks = jax.tree.map(jnp.ones_like, state)
    marks = eqx.tree_at(
        lambda s: (s.v, s.cai, s.eca),
        marks,
        tuple(jnp.asarray(m, state.v.dtype) for m in (net.area > 0, calcium, calcium)),
    )
    return np.asarray(ravel_pytree(marks)[0]) > 0.5
