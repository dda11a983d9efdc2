"""The ``neuroctl`` command."""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro


@dataclass(frozen=True)
class Demo:
    """Simulate a ball-and-stick cell and the shipped evidence plant; write a figure.

    The trained plant runs on two held-out trials, one per label.
    """

    out: Path = Path("results/demo_simulation.png")
    """Where to write the figure (PNG)."""
    duration_ms: float = 200.0
    """Simulated time per run [ms] (at most 10**4)."""
    dt: float = 0.025
    """Time step [ms] (at most 1 and at most --duration-ms)."""
    scheme: Literal["be", "cn"] = "cn"
    """Backward Euler or Crank–Nicolson."""
    seed: int = 0
    """Seed of the input noise, in [0, 2**32-1]."""


def demo(cfg: Annotated[Demo, tyro.conf.arg(name="")]) -> Path:
    """Simulate a ball-and-stick cell and the shipped plant; write a figure (~20 s)."""
    from neuroctl.options import (
        MAX_SEED,
        check_float,
        check_ints,
        check_output_file,
    )

    check_ints(cfg, {"seed": (0, MAX_SEED)})
    check_float("--duration-ms", cfg.duration_ms, 0.0, 1e4, example=200.0)
    check_float("--dt", cfg.dt, 0.0, min(1.0, cfg.duration_ms), example=0.025)
    check_output_file("--out", cfg.out)
    import jax

    jax.config.update("jax_enable_x64", True)  # the shipped plant runs in float64
    from neuroctl.demo import run_demo
    from neuroctl.io import save_figure
    from neuroctl.plotting import demo_figure

    t0 = time.perf_counter()
    r = run_demo(cfg.seed, cfg.duration_ms, cfg.dt, cfg.scheme)
    elapsed = time.perf_counter() - t0
    path = save_figure(
        demo_figure(
            r.t_cell,
            r.v_cell,
            r.amps,
            r.t_net,
            r.v_somata,
            r.v_readouts,
            r.labels,
            r.decisions,
        ),
        cfg.out,
    )
    print(
        f"simulated 3 ball-and-stick runs ({cfg.duration_ms:g} ms) and the trained "
        f"evidence plant on 2 held-out 520-ms trials (labels {r.labels} → decisions "
        f"{r.decisions}) in {elapsed:.1f} s incl. compilation"
    )
    print(f"wrote {path}")
    return path


def main() -> None:
    from neuroctl.cli.train import COMMANDS as train_commands
    from neuroctl.errors import ConfigError
    from neuroctl.io.checkpoints import CheckpointError
    from neuroctl.train.commands import COMMANDS as plant_commands
    from neuroctl.train.policy_commands import COMMANDS as policy_commands

    try:
        tyro.extras.subcommand_cli_from_dict(
            {**train_commands, **policy_commands, "demo": demo, **plant_commands},
            prog="neuroctl",
        )
    except (ConfigError, CheckpointError) as err:  # bad input: a message, no trace
        raise SystemExit(f"neuroctl: error: {err}") from None


if __name__ == "__main__":
    main()
