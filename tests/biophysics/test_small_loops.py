"""`neuroctl.small_loops`: XLA:CPU compiles small time loops into one function.

The option must be set before JAX starts, so the solver runs under it in a child
process (small_loops_worker.py, ``NEUROCTL_XLA_SMALL_LOOPS=1``), and its results
are compared here with this process's (the default: a kernel per fusion, synaptic
currents by scatter-add). In float64 the two differ only by rounding: a
different order of the sums (synaptic currents and gather transposes by segmented
prefix sums instead of scatter-adds) and code compiled differently. Measured: max
|ΔV| 1.1e-12 mV on the paper network (400 steps), 1.0e-13 mV on 10 HH cells,
1.6e-13 mV on two bushy cells (tree levels of index arrays), gradients 8.7e-15 and
8.4e-16 relative; the 10 NEURON cases, both schemes, within 1.7e-8 mV
under the option. One synapse left out of the sum moves the paper network's V by
3.5 mV within the 400 steps (checked below), so the 1e-9 bounds discriminate.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from neuroctl import small_loops
from neuroctl.biophysics import solver
from neuroctl.errors import ConfigError

WORKER = Path(__file__).with_name("small_loops_worker.py")
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="module")
def child(tmp_path_factory) -> tuple[dict, dict]:
    out = tmp_path_factory.mktemp("small_loops") / "out.npz"
    env = dict(os.environ, NEUROCTL_XLA_SMALL_LOOPS="1")
    env.pop("XLA_FLAGS", None)
    res = subprocess.run(
        [sys.executable, str(WORKER), str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=Path(__file__).parents[2],
    )
    assert res.returncode == 0, res.stderr[-3000:]
    info = json.loads(res.stdout.strip().splitlines()[-1])
    return info, dict(np.load(out))


def test_the_option_compiles_the_solver_loop_into_one_function(child):
    """Every program: the NEURON cases (a long cable's axial current, the Hay
    cell), the paper network, HH cells, the bushy tree, and the gradients (no
    gather transposes into a scatter: `solver._take`)."""
    info, _ = child
    assert info["active"]
    loops, scatters = info["one_function"], info["scatters"]
    assert len([k for k in loops if k.startswith("neuron/")]) >= 8
    programs = {"paper_forward", "paper_gradient", "hh10_forward", "tree_forward"}
    assert programs | {"tree_gradient"} <= set(loops)
    for key, one in loops.items():
        assert one, key
        assert scatters[key] == 0, (key, scatters[key])


def test_the_neuron_cases_stay_within_a_microvolt_under_the_option(child):
    info, _ = child
    errs = info["neuron_max_dv_mV"]
    assert len(errs) >= 8
    for name, err in errs.items():
        assert err <= 1e-6, (name, err)


def test_paper_network_and_its_gradient_equal_the_default_path(child):
    from small_loops_worker import paper_programs

    _, arrays = child
    (fwd, fa), (grad, ga) = paper_programs()
    v = np.asarray(fwd(*fa))
    assert np.abs(arrays["paper_v"] - v).max() <= 1e-9
    g = np.asarray(grad(*ga))
    scale = np.abs(g).max()
    assert scale > 0
    assert np.abs(arrays["paper_grad"] - g).max() <= 1e-9 * scale


def test_bushy_tree_and_its_gradient_equal_the_default_path(child):
    """Tree levels of index arrays (elimination by segment sums and selects),
    electrodes at scattered nodes, a synapse: equal to the scatter path."""
    from small_loops_worker import tree_programs

    _, arrays = child
    (fwd, fa), (grad, ga) = tree_programs()
    v = np.asarray(fwd(*fa))
    assert np.ptp(v) > 50.0  # the cells spike: a real trajectory [mV]
    assert np.abs(arrays["tree_v"] - v).max() <= 1e-9
    g = np.asarray(grad(*ga))
    scale = np.abs(g).max()
    assert scale > 0
    assert np.abs(arrays["tree_grad"] - g).max() <= 1e-9 * scale


def test_hh_network_equals_the_default_path(child):
    from small_loops_worker import hh_program

    _, arrays = child
    f, args = hh_program()
    assert np.abs(arrays["hh_v"] - np.asarray(f(*args))).max() <= 1e-9


@pytest.mark.parametrize("sorted_post", [False, True])
def test_segment_sum_equals_a_scatter_add_with_gradients(sorted_post):
    rng = np.random.default_rng(1)
    post = rng.integers(0, 30, 57)  # nodes 30..39 and some below get nothing
    post = np.sort(post) if sorted_post else post
    plan = solver._segment_plan(post, 40)
    assert (plan.order is None) == sorted_post
    x = jnp.asarray(rng.normal(size=57))

    def scatter(x):
        return jnp.zeros(40, x.dtype).at[post].add(x)

    def seg(x):
        return solver._segment_sum(x, plan)

    np.testing.assert_allclose(seg(x), scatter(x), rtol=1e-13, atol=1e-13)
    w = jnp.asarray(rng.normal(size=40))
    for f in (seg, scatter):
        check_grads(lambda x, f=f: f(x) @ w, (x,), order=1)
    np.testing.assert_allclose(
        jax.grad(lambda x: seg(x) @ w)(x), w[post], rtol=1e-13, atol=1e-13
    )


def test_add_at_and_set_at_equal_scatters_when_scatter_free(monkeypatch):
    rng = np.random.default_rng(3)
    base = jnp.asarray(rng.normal(size=12))
    idx = np.array([4, 0, 4, 9, 4, 2])  # repeats: they add up
    x = jnp.asarray(rng.normal(size=len(idx)))
    distinct = np.array([7, 1, 10])
    y = jnp.asarray(rng.normal(size=len(distinct)))
    add_ref, set_ref = base.at[idx].add(x), base.at[distinct].set(y)
    monkeypatch.setattr(small_loops, "active", lambda: True)
    np.testing.assert_allclose(solver._add_at(base, idx, x), add_ref, rtol=1e-14)
    np.testing.assert_array_equal(solver._set_at(base, distinct, y), set_ref)
    w = jnp.asarray(rng.normal(size=12))
    check_grads(lambda b, y: solver._set_at(b, distinct, y) @ w, (base, y), order=1)
    text = (
        jax.jit(jax.grad(lambda b, y: solver._set_at(b, distinct, y) @ w, (0, 1)))
        .lower(base, y)
        .compile()
        .as_text()
    )
    assert "scatter(" not in text


def test_take_equals_a_gather_in_every_mode():
    """`solver._take`: ``x[idx]`` whose transpose is a segment sum, not a scatter."""
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=6))
    for idx in (np.array([3, 0, 3, 5, 1, 1, 2, 0, 4]), np.array([4, 1])):
        w = jnp.asarray(rng.normal(size=len(idx)))
        np.testing.assert_array_equal(solver._take(x, idx), x[idx])

        def f(x, idx=idx, w=w):
            return jnp.sin(solver._take(x, idx)) @ w

        def ref(x, idx=idx, w=w):
            return jnp.sin(x[idx]) @ w

        np.testing.assert_allclose(jax.grad(f)(x), jax.grad(ref)(x), rtol=1e-13)
        np.testing.assert_allclose(
            jax.jvp(f, (x,), (x,))[1], jax.jvp(ref, (x,), (x,))[1], rtol=1e-13
        )
        xs = jnp.stack([x, 2 * x])
        np.testing.assert_allclose(
            jax.vmap(jax.grad(f))(xs), jax.vmap(jax.grad(ref))(xs), rtol=1e-13
        )
        check_grads(f, (x,), order=2)
        text = jax.jit(jax.grad(f)).lower(x).compile().as_text()
        assert "scatter(" not in text


def test_a_wrong_synaptic_sum_would_show(monkeypatch):
    """The equality tests discriminate: one synapse left out moves V by mV."""
    from small_loops_worker import paper_programs

    (fwd, fa), _ = paper_programs()
    v = np.asarray(fwd(*fa))
    original = solver._segment_plan

    from neuroctl.plants.evidence_net import build_network

    synapse_post = build_network().synapse_post[0]

    def dropped(post, n):  # the node of the last sorted synapse loses that synapse
        plan = original(post, n)
        if not np.array_equal(post, synapse_post):  # other plans (transposes) kept
            return plan
        node = np.sort(post)
        assert node[-1] == node[-2]  # that node has another synapse left
        last = plan.last.copy()
        last[node[-1]] -= 1
        return plan._replace(last=last)

    monkeypatch.setattr(small_loops, "active", lambda: True)
    monkeypatch.setattr(solver, "_segment_plan", dropped)
    (fwd2, fa2), _ = paper_programs()
    assert np.abs(np.asarray(fwd2(*fa2)) - v).max() > 1e-3


def test_enable_refuses_once_jax_runs_and_names_the_fix(monkeypatch):
    jnp.zeros(1).block_until_ready()  # JAX has started in this process
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
    with pytest.raises(ConfigError, match="NEUROCTL_XLA_SMALL_LOOPS=1"):
        small_loops.enable()
    with pytest.raises(ConfigError, match="threshold_bytes: got 0"):
        small_loops.enable(0)


def test_the_threshold_joins_the_flags_already_given():
    opt = "xla_cpu_small_while_loop_byte_threshold=1048576"
    assert small_loops.xla_flags("", 1048576) == f"--xla_backend_extra_options={opt}"
    assert small_loops.xla_flags("--a=1", 1048576) == (
        f"--a=1 --xla_backend_extra_options={opt}"
    )
    assert small_loops.xla_flags("--xla_backend_extra_options=k=v --b", 1048576) == (
        f"--xla_backend_extra_options=k=v,{opt} --b"
    )
