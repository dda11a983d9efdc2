"""The ``neuroctl`` command."""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro


@dataclass(frozen=True)
class Demo:
    """Simulate a ball-and-stick cell and the evidence-integration RNN; write a figure."""

    out: Path = Path("results/demo_simulation.png")
    """Where to write the figure (PNG)."""
    duration_ms: float = 200.0
    """Simulated time per run [ms]."""
    dt: float = 0.025
    """Time step [ms]."""
    scheme: Literal["be", "cn"] = "cn"
    """Backward Euler or Crank–Nicolson."""
    seed: int = 0
    """Seed of the input noise."""


def demo(cfg: Annotated[Demo, tyro.conf.arg(name="")]) -> Path:
    from neuroctl.demo import run_demo
    from neuroctl.io import save_figure
    from neuroctl.plotting import demo_figure

    if not cfg.duration_ms > 0 or not cfg.dt > 0:
        raise SystemExit(
            f"--duration-ms and --dt must be > 0 (got {cfg.duration_ms}, {cfg.dt})."
        )
    t0 = time.perf_counter()
    r = run_demo(cfg.seed, cfg.duration_ms, cfg.dt, cfg.scheme)
    elapsed = time.perf_counter() - t0
    path = save_figure(
        demo_figure(r.t_cell, r.v_cell, r.amps, r.t_net, r.v_somata, r.v_readouts),
        cfg.out,
    )
    n = len(r.t_net)
    print(
        f"simulated 3 ball-and-stick runs and the 62-compartment evidence RNN for "
        f"{cfg.duration_ms:g} ms ({n} steps each) in {elapsed:.1f} s incl. compilation"
    )
    print(f"wrote {path}")
    return path


def main() -> None:
    from neuroctl.train.commands import COMMANDS as plant_commands

    cmd = tyro.extras.subcommand_cli_from_dict(
        {"demo": demo, **plant_commands}, prog="neuroctl"
    )
    del cmd


if __name__ == "__main__":
    main()
