"""Compile the fused kernel for an NVIDIA GPU on this machine (no GPU needed).

    pip install triton==3.9.0 && python scripts/fused_kernel_compile.py

JAX lowers `simulate_fused` for CUDA (`fused.lower_for_cuda`); this script takes the
Triton IR out of that lowering and compiles it with the `triton` package to PTX and a
cubin for sm_90a (H100/H200), then runs ``ptxas -v`` for the register and spill
report. It measures what a GPU run would first pay and whether the kernel builds at
all; it does not run it. The Triton here (3.9) is not the one inside jaxlib, so
XLA's own compile time on a GPU may differ.

Writes results/fused_kernel_compile.md (and prints it).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import bench_fused, hh_nets, peers  # noqa: E402
from neuroctl.biophysics import fused  # noqa: E402

OUT = ROOT / "results" / "fused_kernel_compile.md"
ARCH = 90  # sm_90a
BATCH, STEPS, SEGMENT = 64, 100, 25
# (label, network factory, block). Lanes (block 32) on the paper network are not
# run: 2 and 4 cells already show the coalescing pass's superlinear growth. With one
# trial per program the backward kernel (`backward="fused"`) is compiled too; with
# lanes only the forward one.
CASES = [
    ("2 HH cells (8 nodes)", lambda: hh_nets.ours(2), 32),
    ("2 HH cells (8 nodes)", lambda: hh_nets.ours(2), 1),
    ("4 HH cells (16 nodes)", lambda: hh_nets.ours(4), 32),
    ("4 HH cells (16 nodes)", lambda: hh_nets.ours(4), 1),
    ("paper network (82 nodes)", None, 1),
]
KERNELS = {"neuroctl_fused_steps": "forward", "neuroctl_fused_steps_vjp": "backward"}


def paper_network():
    from neuroctl.plants.evidence_net import build_network

    return build_network(pairs=peers.evidence_pairs())


def triton_ir(net, block: int, backward: bool) -> dict[str, str]:
    """``{"forward" | "backward": Triton IR text}`` from JAX's CUDA lowering of
    the forward pass, or of a gradient (both kernels) if `backward`."""
    from jax._src.interpreters import mlir as jmlir
    from jax._src.lib import triton as jtriton
    from jax._src.lib.mlir import ir

    p, s, u = bench_fused._inputs(net, BATCH, STEPS, jnp.float32)

    def run(p, s, u):
        return fused.simulate_fused(net, p, s, u, 0.025, segment=SEGMENT, block=block)

    if backward:
        text = fused.lower_for_cuda(jax.grad(lambda *a: run(*a)[1].mean()), p, s, u)
    else:
        text = fused.lower_for_cuda(run, p, s, u)
    found = {}
    with jmlir.make_ir_context():
        module = ir.Module.parse(text)
        for call in (op for op in _ops(module.operation) if _is_triton_call(op)):
            config = ir.DictAttr(call.attributes["mhlo.backend_config"])
            name = KERNELS[ir.StringAttr(config["name"]).value]
            found[name] = ir.StringAttr(config["ir"]).value_bytes
    ctx = ir.Context()
    jtriton.dialect.register_dialect(ctx)
    return {
        k: ir.Module.parse(v, ctx).operation.get_asm(enable_debug_info=False)
        for k, v in found.items()
    }


def _ops(op):
    for region in op.regions:
        for block in region.blocks:
            for child in block.operations:
                yield child
                yield from _ops(child.operation)


def _is_triton_call(op) -> bool:
    if op.operation.name != "stablehlo.custom_call":
        return False
    return ir_str(op.attributes["call_target_name"]) == fused.TRITON_CALL


def ir_str(attr) -> str:
    from jax._src.lib.mlir import ir

    return ir.StringAttr(attr).value


def compile_ir(ttir: str, workdir: Path) -> dict:
    """Triton compile time [s], PTX statistics and ptxas's report.

    Triton's kernel cache goes to `workdir` (fresh each time), so every compile is
    timed from scratch rather than read back from ~/.triton.
    """
    os.environ["TRITON_CACHE_DIR"] = str(workdir / "triton-cache")
    os.environ["TRITON_ALWAYS_COMPILE"] = "1"
    import triton
    from triton.backends.compiler import GPUTarget

    src = workdir / "kernel.ttir"
    src.write_text(ttir)
    t0 = time.perf_counter()
    kernel = triton.compile(
        str(src),
        target=GPUTarget("cuda", ARCH, 32),
        options={"num_warps": 1, "num_stages": 1},  # as simulate_fused passes them
    )
    out = {"triton_s": time.perf_counter() - t0}
    ptx = kernel.asm["ptx"]
    out["ptx_lines"] = ptx.count("\n")
    out["f32_arith"] = len(re.findall(r"^\s+\w+(\.\w+)*\.f32\b", ptx, re.M))
    out["global_loads"] = ptx.count("ld.global")
    out["global_stores"] = ptx.count("st.global")
    (workdir / "kernel.ptx").write_text(ptx)
    return out | ptxas(workdir / "kernel.ptx")


def ptxas(ptx: Path) -> dict:
    import triton

    bin_dir = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"
    exe = next(
        bin_dir / n for n in ("ptxas-blackwell", "ptxas") if (bin_dir / n).exists()
    )
    cmd = [
        str(exe),
        f"-arch=sm_{ARCH}a",
        "-v",
        str(ptx),
        "-o",
        str(ptx.with_suffix(".cubin")),
    ]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    report = res.stdout + res.stderr
    return {
        "ptxas_s": time.perf_counter() - t0,
        "registers": int(re.search(r"Used (\d+) registers", report).group(1)),
        "stack_bytes": int(re.search(r"(\d+) bytes stack frame", report).group(1)),
        "spill_store_bytes": int(
            re.search(r"(\d+) bytes spill stores", report).group(1)
        ),
    }


def markdown(rows: list[dict], header: dict) -> str:
    lines = [
        "# The fused kernel, compiled offline for sm_90a (no GPU)",
        "",
        "Regenerate: `pip install triton==3.9.0 && "
        "python scripts/fused_kernel_compile.py`.",
        "",
        f"Run {header['date']}, commit {header['commit']}; jax {jax.__version__}, "
        f"triton {header['triton']}; {header['cpu']}. Kernel: `simulate_fused`, "
        f"{STEPS} steps in segments of {SEGMENT}, float32, batch {BATCH}. Compile "
        "times are wall seconds on this 2-core machine; they measure what a first GPU "
        "call pays before running (XLA's Triton may differ).",
        "",
        "| network | kernel | trials per program | Triton IR lines | "
        "Triton compile (s) | ptxas (s) | registers | stack (B) | PTX f32 ops | "
        "global loads / stores |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['kernel']} | {r['block']} | {r['ir_lines']:,} | "
            f"{r['triton_s']:.1f} | {r['ptxas_s']:.1f} | {r['registers']} | "
            f"{r['stack_bytes']:,} | "
            f"{r['f32_arith']:,} | {r['global_loads']:,} / {r['global_stores']:,} |"
        )
    lines += [
        "",
        "With trials on the lanes (32 per program) every state load and store is a "
        "vector access, and Triton's coalescing pass walks the whole kernel for each "
        "of them, so its time grows with (accesses × kernel size²): Triton's pass "
        "timer (`MLIR_ENABLE_TIMING=1`) put 98 % of the 2-cell lanes compile in "
        "`TritonGPUCoalesce`. One trial per program uses scalar accesses, which that "
        "pass skips; `simulate_fused` defaults to it.",
        "",
        "The backward kernel (`backward='fused'`, the default reverse mode) holds the "
        "replayed step, the step's VJP (its forward with residuals and its transpose) "
        "and the parameter-cotangent accumulation, unrolled over the nodes. Backward "
        "over forward, one trial per program:",
        "",
        "| network | Triton IR lines | Triton compile | ptxas |",
        "|---|---:|---:|---:|",
    ]
    fwd = {r["label"]: r for r in rows if r["kernel"] == "forward" and r["block"] == 1}
    for r in (r for r in rows if r["kernel"] == "backward"):
        f = fwd[r["label"]]
        ratios = [r[k] / f[k] for k in ("ir_lines", "triton_s", "ptxas_s")]
        lines.append(
            f"| {r['label']} | " + " | ".join(f"{x:.1f}x" for x in ratios) + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    try:
        import triton
    except ImportError:
        sys.exit("needs the triton package: pip install triton==3.9.0")
    from benchmarks import _harness as H

    prov = H.provenance()
    rows = []
    for label, factory, block in CASES:
        net = factory() if factory else paper_network()
        for kernel, ttir in triton_ir(net, block, backward=block == 1).items():
            with tempfile.TemporaryDirectory() as tmp:
                row = {"label": label, "kernel": kernel, "block": block}
                row |= {"ir_lines": ttir.count("\n")} | compile_ir(ttir, Path(tmp))
            rows.append(row)
            print(row, flush=True)
    header = {
        "date": prov["date"],
        "commit": prov["commit"] + (" (dirty tree)" if prov["dirty"] else ""),
        "triton": triton.__version__,
        "cpu": prov["cpu"],
    }
    text = markdown(rows, header)
    print(text)
    if not args.no_write:
        OUT.write_text(text)


if __name__ == "__main__":
    main()
