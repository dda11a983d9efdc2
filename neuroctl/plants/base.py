"""`Plant`: a frozen network with named inputs and readouts (any network).

A plant is what a stimulator acts on: a compiled `neuroctl.biophysics.Network`, its
(trained or hand-set) parameters, the resting potential it starts from, and names
for its stimulus sites (inputs, where currents enter) and recording sites
(readouts, the voltages an experimenter can measure). The evidence plant
(`neuroctl.plants.evidence`) is one such network with a task attached.
"""

import equinox as eqx
import numpy as np

from neuroctl import biophysics as bp
from neuroctl.errors import bad_value


class Plant(eqx.Module):
    """A frozen network with named stimulus sites and readouts.

    Attributes:
        network: the compiled network (static).
        params: its parameters (conductances [mS/cm², µS], reversals [mV], …).
        inputs: one name per stimulus site of `network` (static).
        readouts: one name per recording site of `network` (static); readouts are
            membrane voltages [mV].
        v_init: resting potential every episode starts from [mV] (static).
        name: the plant's name (static).
    """

    network: bp.Network = eqx.field(static=True)
    params: bp.Params
    inputs: tuple[str, ...] = eqx.field(static=True)
    readouts: tuple[str, ...] = eqx.field(static=True)
    v_init: float = eqx.field(static=True, default=-65.0)
    name: str = eqx.field(static=True, default="plant")

    def __check_init__(self) -> None:
        _names("inputs", self.inputs, self.network.n_stimuli, "stimulus sites")
        _names("readouts", self.readouts, self.network.n_recordings, "recordings")

    @classmethod
    def from_network(
        cls,
        network: bp.Network,
        params: bp.Params | None = None,
        inputs: tuple[str, ...] | None = None,
        readouts: tuple[str, ...] | None = None,
        v_init: float = -65.0,
        name: str = "plant",
    ) -> "Plant":
        """A plant of `network` (default params; names ``input<i>``/``v<i>``)."""
        inputs = inputs or tuple(f"input{i}" for i in range(network.n_stimuli))
        readouts = readouts or tuple(f"v{i}" for i in range(network.n_recordings))
        params = network.default_params if params is None else params
        if not np.isfinite(v_init):
            raise bad_value("v_init", v_init, "a finite voltage [mV]", "e.g. -65.0.")
        return cls(network, params, tuple(inputs), tuple(readouts), float(v_init), name)

    def readout(self, name: str) -> int:
        """Index of readout `name` among the recordings [1]."""
        return _index("readout", name, self.readouts)

    def input(self, name: str) -> int:
        """Index of input `name` among the stimulus sites [1]."""
        return _index("input", name, self.inputs)


def _names(field: str, names, n: int, what: str) -> None:
    ok = isinstance(names, tuple) and all(isinstance(x, str) for x in names)
    if not ok or len(names) != n or len(set(names)) != n:
        raise bad_value(
            field,
            names,
            f"{n} distinct names, one per network {what}",
            f"name every one of the network's {what}.",
        )


def _index(kind: str, name: str, names: tuple[str, ...]) -> int:
    if name not in names:
        raise bad_value(kind, name, f"one of the plant's {kind}s {list(names)}", "")
    return names.index(name)
