"""A gain-policy training run on the shared edge (`io.runs.RunDir`, `loop.fit`).

Layout of a run directory ``out/``::

    config.json          PolicyTrainConfig + the plant's name and checksum
    checkpoints/<step>/  Orbax `CheckpointManager` steps of the `TrainState`
    log.jsonl            one line per iteration (`neuroctl.train.bptt.StepMetrics`):
                         loss, return, current power [nA²], charge [pC], mean
                         gain (action_mean), grad norm, diverged, the trials'
                         correct and cross_entropy [nats], times [s]

``resume=True`` restores the newest checkpoint and continues bit-identically (the
trials of iteration ``i`` depend only on the seed and ``i``); log lines after the
restored step are dropped. A run directory refuses a different config or plant.
"""

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp

from neuroctl.errors import ConfigError
from neuroctl.io.runs import RunDir, read_record
from neuroctl.train import loop
from neuroctl.train import policy as tp


@dataclass(frozen=True)
class PolicyRunConfig:
    """Where and how often a run writes (no influence on the maths)."""

    out: Path  # run directory
    iterations: int  # total iterations to reach [1]
    save_every: int = 10  # checkpoint period [iterations]
    keep: int = 2  # checkpoints kept [1]
    resume: bool = False  # continue from the newest checkpoint in `out`
    progress: bool = True  # show a tqdm bar
    init_from: Path | None = None  # start from this run's newest params (fresh Adam)


def run_record(
    cfg: tp.PolicyTrainConfig,
    plant_name: str,
    plant_checksum: str,
    init_from: Path | None = None,
) -> dict:
    """JSON record of everything that fixes the run's maths."""
    record = {
        "train": dataclasses.asdict(cfg),
        "plant": {"name": plant_name, "checksum": plant_checksum},
    }
    if init_from is not None:  # a continuation (e.g. a λ sweep): where it started
        record["init_from"] = str(init_from)
    return record


def _initial_params(
    run: PolicyRunConfig, cfg: tp.PolicyTrainConfig, checksum: str, plant
):
    """Params of `run.init_from` (same architecture and plant), else None."""
    if run.init_from is None:
        return None
    src = Path(run.init_from)
    if (src / "spec.toml").is_file():  # a shipped policy folder
        return _shipped_params(src, cfg, checksum, plant)
    saved = read_record(src)
    src_cfg = tp.PolicyTrainConfig(**saved["train"])
    _check_source(src, src_cfg, saved["plant"]["checksum"], cfg, checksum, False)
    from neuroctl.policies.gain import control_steps

    n_steps = control_steps(plant, src_cfg.control_ms)
    params = restore(src, src_cfg, n_steps=n_steps)[1].params
    new_inputs = cfg.n_obs - src_cfg.n_obs
    if new_inputs and cfg.policy != "open_loop":  # (a profile has no input layer)
        params = widen_to_evidence(params, cfg.policy, new_inputs)
    return params


def _shipped_params(src: Path, cfg: tp.PolicyTrainConfig, checksum: str, plant):
    """Params of a shipped policy folder (verified).

    Its spec must match `cfg`'s architecture and observation exactly, and its
    plant the run's (checksum).
    """
    from neuroctl.policies.shipped import load_policy, read_spec

    spec = read_spec(src)
    _check_source(
        src,
        tp.PolicyTrainConfig.from_spec(spec),
        spec.plant_checksum,
        cfg,
        checksum,
        True,
    )
    policy = load_policy(src, plant=plant)[0]  # verified checkpoint
    return tp.split(policy)[1]


def _check_source(
    src: Path,
    src_cfg: tp.PolicyTrainConfig,
    src_checksum: str,
    cfg: tp.PolicyTrainConfig,
    checksum: str,
    exact_obs: bool,
) -> None:
    """Refuse an `init_from` source of another plant or architecture.

    Its observation may be narrower (then widened) unless `exact_obs`.
    """
    if src_checksum != checksum:
        raise ConfigError(
            f"init_from: {src} was trained on another plant; start from a run or "
            "a shipped policy on this plant."
        )
    arch = ("policy", "hidden", "n_bins", "g_max", "precision")
    obs_ok = src_cfg.n_obs == cfg.n_obs if exact_obs else src_cfg.n_obs <= cfg.n_obs
    if any(getattr(src_cfg, k) != getattr(cfg, k) for k in arch) or not obs_ok:
        keys = arch + ("observe_evidence", "observe_stimulus")
        raise ConfigError(
            f"init_from: {src} has another architecture "
            f"({ {k: getattr(src_cfg, k) for k in keys} }); use one with "
            f"{ {k: getattr(cfg, k) for k in keys} }."
        )


def widen_to_evidence(params: dict, policy: str, new_inputs: int = 1) -> dict:
    """Params of an mlp/gru for an observation with `new_inputs` more entries.

    The input kernel gains zero rows for the new stimulus entries, so the widened
    policy starts out computing exactly what the source did, and training decides
    what the new inputs are worth.
    """
    path = {"mlp": ("hidden",), "gru": ("cell", "dense_i")}[policy]
    params = jax.tree.map(lambda x: x, params)  # a copy to edit
    layer = params
    for key in path:
        layer = layer[key]
    kernel = layer["kernel"]
    zeros = jnp.zeros((new_inputs,) + kernel.shape[1:], kernel.dtype)
    layer["kernel"] = jnp.concatenate([kernel, zeros], axis=0)
    return params


def _upgrade(saved: dict) -> dict:
    """The saved record with train fields added since the run started defaulted."""
    try:
        train = tp.PolicyTrainConfig(**saved.get("train", {}))
    except (TypeError, ConfigError):
        return saved  # an unknown or invalid field: reported as a difference
    return dict(saved, train=dataclasses.asdict(train))


def train_policy(
    run: PolicyRunConfig,
    cfg: tp.PolicyTrainConfig,
    plant,
    plant_name: str,
    plant_checksum: str,
) -> tuple[tp.Parts, tp.TrainState]:
    """Train (or resume) a policy on `plant`; checkpoint periodically and at the end."""
    env, env_params = tp.make_env(plant, cfg)
    parts, fresh = tp.init_state(cfg, env.n_steps)
    record = run_record(cfg, plant_name, plant_checksum, run.init_from)
    with RunDir(run.out, record, run.resume, run.keep, upgrade=_upgrade) as rd:
        if rd.resumed:
            state, notes = rd.restore(fresh)
            for note in notes:
                print(f"neuroctl: {note}; using an older checkpoint")
        else:
            state = fresh
            start = _initial_params(run, cfg, plant_checksum, plant)
            if start is not None:
                opt_state = tp.optimizer(cfg).init(start)
                state = tp.TrainState(fresh.step, start, opt_state)
        step_fn = tp.make_train_step(env, env_params, parts, cfg)
        state = loop.fit(
            rd,
            step_fn,
            state,
            run.iterations,
            save_every=run.save_every,
            progress=run.progress,
            desc="train-policy",
            postfix={"loss": "loss", "acc": "correct", "gain": "action_mean"},
        )
    return parts, state


def restore(
    out: Path, cfg: tp.PolicyTrainConfig, step: int | None = None, n_steps=None
):
    """``(parts, TrainState)`` of a run's checkpoint (newest unless `step`).

    `n_steps`: control steps per trial of its env [1]; default: from the plant
    the run recorded.
    """
    if n_steps is None:
        from neuroctl.plants import load
        from neuroctl.policies.gain import control_steps

        plant = load(read_record(Path(out))["plant"]["name"])
        n_steps = control_steps(plant, cfg.control_ms)
    parts, fresh = tp.init_state(cfg, n_steps)
    with RunDir.open(out) as rd:
        state, _ = rd.restore(fresh, step)
    return parts, state
