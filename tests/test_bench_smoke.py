"""Smoke test of the benchmark harness (benchmarks/): argument parsing, HLO kernel
counting, the timing helper and one quick neuroctl-only case, in-process (CPU)."""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _harness as H  # noqa: E402
from benchmarks import bench_solver, solver_worker  # noqa: E402


def test_plan_from_args():
    plan, args = bench_solver.plan_from_args(["--quick", "--skip", "bas"])
    assert plan.rounds == 1 and not plan.bptt and plan.skip == ("bas",)
    assert not args.write
    full, _ = bench_solver.plan_from_args(["--max-n", "1000", "--rounds", "2"])
    assert [n for n, _ in full.hh] == [10, 100, 1000] and full.rounds == 2
    keys = [k for k, _ in bench_solver.groups(full, first_round=True)]
    assert keys[0] == "paper_fwd" and "paper_grad" in keys and "hh_1000" in keys
    assert bench_solver.FUSED in keys and set(bench_solver.VARIANTS) <= set(keys)


def test_step_kernels_of_a_scan():
    def f(x):
        def body(c, xi):
            c = jnp.tanh(c * 1.5 + xi) + jnp.sin(c)
            return c, c

        return jax.lax.scan(body, jnp.zeros(3), x)[1]

    text = jax.jit(f).lower(jnp.ones((37, 3))).compile().as_text()
    (step,) = H.step_bodies(text, [37])
    assert step["trip"] == 37 and 1 <= step["static"] <= step["dynamic"] < 20
    assert H.step_bodies(text, [5]) == []


def test_time_min_runs_at_least_min_s():
    m = H.time_min(lambda: jnp.ones(3) + 1, min_s=0.01, reps=3)
    assert len(m["s_all"]) == 3 and m["s"] == min(m["s_all"]) > 0
    assert all(
        n * s >= 0.01 for n, s in zip(m["calls_per_rep"], m["s_all"], strict=True)
    )


def test_one_quick_neuroctl_case():
    case = {"sim": "neuroctl", "n": 10, "T": 50, "dtype": "float32"}
    r = solver_worker.hh_fwd(case)
    assert r["fwd"]["us_per_step"] > 0 and r["fwd"]["ns_per_comp_step"] > 0
    assert "load" in H.load_note([{"load_start": (1.0,), "core0_busy": 0.5}])


def test_fused_formulation_is_the_same_maths(monkeypatch):
    """The forward A/B's rewritten step (fewer kernels) matches the shipped step in
    float64, so the benchmark compares two formulations of one model."""
    import neuroctl.biophysics as bp
    from benchmarks import peers
    from neuroctl.plants.evidence_net import build_network

    net = build_network(pairs=peers.evidence_pairs())  # float64: conftest's x64
    p = net.cast_params(net.default_params, jnp.float64)
    s = bp.init_state(net, p, peers.V_INIT, jnp.float64)
    x = np.swapaxes(peers.example_currents(1, 400, seed=0), 1, 2)[0]

    def run():
        return np.asarray(bp.simulate(net, p, s, jnp.asarray(x), 0.025)[1])

    shipped = run()
    solver_worker._fused_formulation(monkeypatch.setattr)  # undone after the test
    fused = run()
    assert np.ptp(shipped) > 10.0  # [mV]: the cells spike, the test can fail
    np.testing.assert_allclose(fused, shipped, rtol=0, atol=1e-8)


def test_bptt_table_reports_min_and_median():
    def rep(times):
        step = {"s": min(times), "s_all": times, "compile_s": 1.0}
        return {
            "step": step,
            "env": "EvidenceStim-v0",
            "batch": 8,
            "dtype": "float64",
            "setup_s": 1.0,
            "load_start": (1.0,),
            "load_after": (1.0,),
            "core0_busy": 0.01,
        }

    runs = {"baseline": [rep([4.0, 4.2, 4.4])], "tree": [rep([2.0, 4.1, 4.3])]}
    res = {"runs": {"bptt": runs}, "bptt_revision": "abc1234"}
    lines, speedup = bench_solver.table_bptt(res)
    text = "\n".join(lines)
    assert speedup == 2.0  # the min over reps, the target's measure
    assert "**2.00x** as fast as abc1234" in text and "by the medians 1.02x" in text


def test_fused_benchmark_runs_on_the_cpu_in_interpret_mode(tmp_path):
    """bench_fused end to end on a tiny network (Pallas interpreter): the float64
    checks (recordings, gradient) pass and every table row is filled, the policy
    iteration included. Speed is for a GPU run."""
    from benchmarks import bench_fused

    res = bench_fused.main(
        [
            "--interpret",
            "--quick",
            "--grad-cells",
            "2",
            "--json",
            str(tmp_path / "r.json"),
        ]
    )
    assert res["check"]["mv"] < 1e-9  # [mV]
    assert res["check"]["grad_rel"] < 1e-9  # the backward kernel's gradient
    assert [r["batch"] for r in res["forward"]] == [1, 4]
    assert all(
        r["xla"]["us_per_step"] > 0 and r["fused"]["us_per_step"] > 0
        for r in res["forward"]
    )
    assert [r["cells"] for r in res["networks"]] == [2, 3]
    assert all("fused" in r and "xla" in r for r in res["networks"])
    assert {r["batch"] for r in res["gradient"]} == {1, 64}
    assert all(r["fused_xla_bwd"] > 0 for r in res["gradient"])
    assert [r["env"] for r in res["policy"]] == ["SpikeRate-v0"]
    assert res["policy"][0]["s"] > 0
    text = bench_fused.markdown(res)
    assert text.count("| 1 |") >= 2 and "nan" not in text
    assert (tmp_path / "r.json").exists()


def test_fused_benchmark_refuses_a_cpu_timing_run():
    import pytest

    from benchmarks import bench_fused

    with pytest.raises(SystemExit, match="needs a CUDA GPU"):
        bench_fused.main(["--quick"])


def test_small_loops_table_and_targets_column():
    """Synthetic runs: the table's ratios and the targets' opt-in column."""
    meta = {"load_start": (1.0,), "load_after": (1.0,), "core0_busy": 0.0}

    def paper(us, one=None):
        row = {"batch": 1, "dtype": "float32", "T": 10, "us_per_step": us}
        if one is not None:
            row["one_function"] = one
        return {**meta, "rows": [row]}

    def grad(g, f):
        return {**meta, "grad": {"s": g}, "fwd": {"s": f}}

    runs = {
        "paper_fwd": {
            "neuroctl": [paper(6.0)],
            "neuroctl+small": [paper(3.0, True)],
            "jaxley": [paper(14.0)],
            "jaxley+small": [paper(13.5)],
        },
        "paper_grad": {
            "neuroctl": [grad(0.8, 0.2)],
            "neuroctl+small": [grad(0.5, 0.1)],
        },
    }
    plan = bench_solver.Plan(paper_configs=((1, "float32", 10),), hh=(), grad_T=10)
    res = {"runs": runs, "checks": {}}
    lines, found = bench_solver.table_small(res, plan)
    text = "\n".join(lines)
    assert "| paper network forward, batch 1, float32 (µs/step) | 6 | 3 | yes" in text
    assert "| **2.00x** | 14 | 13.5 | **4.50x** |" in text  # faster Jaxley / small
    assert found[(1, "float32")] == (3.0, 13.5) and found["grad_over_fwd"] == 5.0
    tgt = "\n".join(bench_solver.targets({}, {}, {}, None, None, found))
    assert "| forward vs Jaxley >= 4x at batch 1 (float32) | not measured | n/a " in tgt
    assert "| 4.50x | met |" in tgt and "| 5.00 | **missed** |" in tgt
    plan, _ = bench_solver.plan_from_args(["--quick", "--skip", "small"])
    assert not plan.small
    assert all(
        lab in bench_solver.SIMS for lab, _, _ in bench_solver._sims(plan, "paper_fwd")
    )
    assert [lab for lab, _, _ in bench_solver._sims(plan, "bas")] == [
        "neuroctl",
        "neuron",
    ]


def test_ball_and_sticks_table_and_target_with_small_loops():
    meta = {"load_start": (1.0,), "load_after": (1.0,), "core0_busy": 0.0}

    def ours(s64, s32, one=None):
        rows = {"float64": {"s": s64}, "float32": {"s": s32}}
        for r in rows.values():
            if one is not None:
                r["one_function"] = one
        return {**meta, **rows}

    runs = {
        "neuroctl": [ours(0.08, 0.07)],
        "neuroctl+small": [ours(0.05, 0.04, True), ours(0.06, 0.045, True)],
        "neuron": [{**meta, "s": 1.5}, {**meta, "s": 1.6}],
    }
    lines, speed = bench_solver.table_bas({"runs": {"bas": runs}})
    text = "\n".join(lines)
    assert "| default | float64 | 0.08 | 1.5 | **18.75x** | n/a | n/a |" in text
    assert "| small loops | float64 | 0.05 | 1.5 | **30.00x** | n/a | yes |" in text
    assert speed == pytest.approx({"neuroctl": 18.75, "neuroctl+small": 30.0})
    tgt = "\n".join(bench_solver.targets({}, {}, {}, speed))
    assert "| 100 ball-and-sticks >= 20x NEURON (float64) | 18.75x | **missed** " in tgt
    assert "| 30.00x | met |" in tgt
    plan, _ = bench_solver.plan_from_args(["--quick"])
    labs = [lab for lab, _, env in bench_solver._sims(plan, "bas")]
    assert labs == ["neuroctl", "neuron", "neuroctl+small"]


def test_compute_floor_table_and_targets():
    """Synthetic floor runs: min over rounds, measured / floor, the two targets."""
    meta = {"load_start": (1.0,), "load_after": (1.0,), "core0_busy": 0.0}

    def floor_run(scale):
        def net(fl):
            c = {"flops": 200.0, "divides": 10.0, "transcendentals": 12.0}
            return {**c, "bytes": 600.0, "floor_ns": fl * scale}

        rates = {"arith": 0.01 * scale, "divide": 0.1, "exp": 0.4}
        nets = {"paper": net(12.4), "hh_10000": net(10.0)}
        return {**meta, "rates_ns": rates, "nets": nets}

    res = {"runs": {"floor": {"neuroctl": [floor_run(1.5), floor_run(1.0)]}}}
    # paper: 1,024 trials × 62 compartments at 50 ns = 3,174.4 µs/step
    paper = {(1024, "float32"): (3174.4, 6348.8)}
    hh = {10_000: (750.0, None)}  # 30,000 compartments at 25 ns
    small = {(1024, "float32"): (4761.6, 6000.0)}
    lines, found = bench_solver.table_floor(res, paper, hh, small)
    text = "\n".join(lines)
    assert "multiply/add 0.0100 ns" in text  # the faster round's rates
    assert (
        "| paper network | batch 1,024 | 200.0 | 10.0 | 12.0 | 12.4 | 50.0 "
        "| 4.03x | 6.05x | n/a | 100.0 | 8.06x |" in text
    )
    assert (
        "| 10,000 HH cells | batch 1 | 200.0 | 10.0 | 12.0 | 10.0 | 25.0 | 2.50x"
        in text
    )
    assert found[("hh", 10_000)] == (2.5, None, None)
    tgt = "\n".join(bench_solver.targets(paper, hh, {}, None, None, {}, found))
    row = "| forward within 2x of the compute floor at N = 10,000 (float32) | 2.50x"
    assert row + " | **missed** | not measured | n/a |" in tgt
    assert bench_solver.table_floor({"runs": {}}, paper, hh, small) == ([], {})
    plan, _ = bench_solver.plan_from_args(["--quick"])
    (case,) = [c for k, c in bench_solver.groups(plan, True) if k == "floor"]
    assert case["ns"] == [10, 100] and bench_solver._sims(plan, "floor") == [
        ("neuroctl", "neuroctl", None)
    ]


def test_step_counts_are_per_compartment():
    """The floor's op counts: per compartment, so the same for 10 and 20 identical
    HH cells; an HH compartment divides and exponentiates (its rate functions)."""
    from benchmarks import hh_nets

    a, b = (
        solver_worker._step_counts(hh_nets.ours(n), jnp.float32, 3 * n)
        for n in (10, 20)
    )
    for k in ("flops", "divides", "transcendentals"):
        assert a[k] == pytest.approx(b[k], rel=0.02)
    assert 6 <= a["transcendentals"] and 6 <= a["divides"] < a["flops"]


def test_simulate_batch_table_and_targets():
    """Synthetic runs: vmap vs simulate_batch vs Jaxley, and its target row."""
    meta = {"load_start": (1.0,), "load_after": (1.0,), "core0_busy": 0.0}

    def run(us):
        row = {"batch": 64, "dtype": "float32", "T": 10, "us_per_step": us}
        return {**meta, "rows": [row]}

    runs = {
        "paper_fwd": {"neuroctl": [run(160.0)], "jaxley": [run(320.0)]},
        "paper_fwd_batch": {"neuroctl": [run(100.0), run(80.0)]},
    }
    res = {"runs": runs, "checks": {}}
    lines, found = bench_solver.table_batch(
        res, bench_solver.paper_rows(runs["paper_fwd"])
    )
    text = "\n".join(lines)
    assert "| 64 | float32 | 160 | 80 | 20.2 | **2.00x** | 320 | **4.00x** |" in text
    assert found == {(64, "float32"): (80.0, 320.0)}
    tgt = "\n".join(bench_solver.targets({}, {}, {}, None, batch=found))
    assert "at batch 64 (float32), `simulate_batch` | 4.00x | met |" in tgt
    assert bench_solver.table_batch({"runs": {}}, {}) == ([], {})
    plan, _ = bench_solver.plan_from_args(["--quick"])
    (case,) = [c for k, c in bench_solver.groups(plan, True) if k == "paper_fwd_batch"]
    assert case["layout"] == "batch" and [c[0] for c in case["configs"]] == [64]
