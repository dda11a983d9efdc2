"""The shipped beta plant (neuroctl.plants.beta): STN axon under an electrode, folders.

float64 throughout (conftest); every simulation is short.
"""

import dataclasses
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neuroctl.plants
from neuroctl.biophysics import Network, PointElectrodes, Site, init_state, simulate
from neuroctl.errors import ConfigError
from neuroctl.io.checkpoints import CheckpointError
from neuroctl.plants import beta as B

CFG = B.BetaNetConfig()
ROOT = Path(__file__).resolve().parents[2]
DT = 0.025  # [ms]


# ------------------------------------------------------------ STN axon + electrode


def _axon_spikes(amplitude: float, distance: float = 30.0) -> list[np.ndarray]:
    """Spikes [ms] at STN soma and axon end; 0.2-ms electrode pulse at 50 ms.

    One STN cell (soma + 300-µm HH axon along +x from x = 20 µm); a point
    electrode `distance` [µm] from the axon's middle, current `amplitude` [µA].
    """
    net = Network.build(
        [B.stn_cell(CFG, 0.0)],
        stimuli=[Site(0)],
        recordings=[Site(0), B.output_site(CFG, 0)],
    )
    electrode = PointElectrodes.build(net, np.array([[170.0, 0.0, distance]]))
    n = int(80.0 / DT)
    currents = np.zeros((n, 1))
    currents[int(50.0 / DT) : int(50.2 / DT), 0] = amplitude  # [µA]
    state = init_state(net, net.default_params, -65.0, jnp.float64)
    _, v = simulate(
        net,
        net.default_params,
        state,
        np.zeros((n, 1)),
        DT,
        electrodes=electrode,
        electrode_currents=currents,
    )
    return [s[s >= 45.0] for s in B.spike_times(np.asarray(v), DT)]


def test_cathodic_pulse_near_stn_axon_evokes_a_spike_a_weak_one_does_not():
    """-100 µA at 30 µm fires the axon within 2 ms (it reaches the synapses on its
    end); -3 µA does not. Nothing fires before the pulse (soma ISI ~0.5 s)."""
    strong_soma, strong_axon = _axon_spikes(-100.0)
    weak_soma, weak_axon = _axon_spikes(-3.0)
    assert len(strong_axon) == 1 and 50.0 < strong_axon[0] < 52.0, strong_axon
    assert len(weak_axon) == 0 and len(weak_soma) == 0, (weak_soma, weak_axon)


def test_stn_axon_conducts_soma_spikes_to_its_end():
    spikes = _run_stn(25.0, 1000.0)
    soma, end = spikes[0][spikes[0] > 200.0], spikes[1][spikes[1] > 200.0]
    assert len(soma) >= 20 and len(end) == len(soma), (len(soma), len(end))
    delay = end - soma  # conduction soma → axon end [ms]
    assert np.all((delay > 0.0) & (delay < 5.0)), delay


def _run_stn(i_app: float, t_stop: float) -> list[np.ndarray]:
    net = Network.build(
        [B.stn_cell(CFG, i_app)], recordings=[Site(0), B.output_site(CFG, 0)]
    )
    state = init_state(net, net.default_params, -65.0, jnp.float64)
    n = int(t_stop / DT)
    _, v = simulate(net, net.default_params, state, np.zeros((n, 0)), DT)
    return B.spike_times(np.asarray(v), DT)


def test_only_stn_cells_have_axons_and_are_placed_apart():
    plant = B.build(jax.random.key(0), CFG, B.PARKINSONIAN)
    net, n = plant.network, CFG.n_cells
    assert net.n_comp == n * (1 + CFG.axon_ncomp) + 3 * n
    assert plant.readouts[4 * n :] == tuple(f"v_stn_axon{i}" for i in range(n))
    xyz = net.xyz[[net.node(Site(c)) for c in (0, 1, n, 2 * n, 3 * n)]]
    assert xyz[1, 1] - xyz[0, 1] == pytest.approx(CFG.cell_spacing)
    assert np.diff(xyz[2:, 2]) == pytest.approx([CFG.population_spacing] * 2)


# ------------------------------------------------------------ spec and folders

SPEC = B.BetaSpec(name="beta_test", state="parkinsonian", seed=3)


def test_spec_round_trips_through_toml():
    assert B.spec_from_dict(tomllib.loads(B.spec_to_toml(SPEC))) == SPEC
    healthy = dataclasses.replace(SPEC, state="healthy", params=B.HEALTHY)
    assert B.spec_from_dict(tomllib.loads(B.spec_to_toml(healthy))) == healthy


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda d: d.update(kind="evidence"), "kind"),
        (lambda d: d.update(colour="red"), r"unknown keys \['colour'\]"),
        (lambda d: d["network"].update(n_axons=3), r"\[network\]: unknown keys"),
        (lambda d: d.update(state="sick"), "state"),
        (lambda d: d["params"].update(g_gpi_tc=-1.0), "BetaParams.g_gpi_tc"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(edit, match):
    raw = tomllib.loads(B.spec_to_toml(SPEC))
    edit(raw)
    with pytest.raises(ConfigError, match=match):
        B.parse_spec(raw)


def _trace(plant, steps: int = 800) -> np.ndarray:
    stim = np.zeros((steps, plant.network.n_stimuli))
    stim[:, : CFG.n_cells] = B.dbs_input(CFG, steps, DT, 150.0)
    state = B.initial_state(plant, jax.random.key(7))
    return np.asarray(simulate(plant.network, plant.params, state, stim, DT)[1])


def test_written_folder_loads_back_to_the_same_simulation(tmp_path):
    plant = B.plant_of(SPEC)
    # parameters that differ from the defaults, so a rebuilt-but-unrestored plant
    # would fail the comparison
    params = plant.network.with_param(plant.params, B.AppliedCurrent, "i_app", 3.0)
    plant = dataclasses.replace(plant, params=params)
    folder = B.write_plant(tmp_path / "p", SPEC, {"note": "test"}, plant)
    loaded = neuroctl.plants.load(folder)
    assert loaded.name == "beta_test" and loaded.readouts == plant.readouts
    np.testing.assert_allclose(_trace(loaded), _trace(plant), rtol=0, atol=1e-12)
    assert np.abs(_trace(loaded) - _trace(B.plant_of(SPEC))).max() > 1.0


def test_a_changed_folder_is_refused(tmp_path):
    folder = B.write_plant(tmp_path / "p", SPEC, {"note": "test"})
    spec = folder / "spec.toml"
    spec.write_text(spec.read_text().replace("seed = 3", "seed = 4"))
    with pytest.raises(CheckpointError, match="spec.toml"):
        neuroctl.plants.load(folder)


@pytest.mark.parametrize("name", ["beta_parkinsonian", "beta_healthy"])
def test_shipped_plant_loads_with_its_card(name):
    plant = neuroctl.plants.load(name)
    card = json.loads((ROOT / "envs" / name / "metrics.json").read_text())
    state = name.removeprefix("beta_")
    assert plant.name == name and card["state"] == state
    assert {"peak_hz", "beta_power", "error_index", "rate_stn"} <= set(card["metrics"])
    assert card["provenance"]["neuroctl_version"]


def test_seal_artefacts_check_passes():
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "seal_artefacts.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "ok plant beta_parkinsonian (kind beta)" in run.stdout
