"""A BPTT run on any registered env, at the edge: build, train, resume, reload.

`RunSpec` names everything that fixes a run's maths: the env (registered name,
`make` options, overrides of scalar env params), the policy (kind and size), the
precision and the `BPTTConfig`. `train_run` trains it in a run directory
(`neuroctl.io.runs.RunDir`: config.json, Orbax checkpoints, JSONL log, progress
bar) and resumes bit-identically; `load_run` rebuilds env and trained policy.
"""

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from neuroctl.envs.core import AbstractEnv
from neuroctl.envs.params import override_params
from neuroctl.envs.registry import make
from neuroctl.errors import ConfigError, bad_value
from neuroctl.io.runs import RunDir, read_record
from neuroctl.policies.base import Parts, split
from neuroctl.policies.networks import POLICY_KINDS, PolicyIO, build_policy
from neuroctl.policies.wrappers import WRAPPERS, wrap
from neuroctl.train import bptt, loop, sharding

Precision = Literal["float32", "float64"]


@dataclass(frozen=True)
class RunSpec:
    """Everything that fixes a run's maths (JSON-able through `as_record`)."""

    env: str  # a registered env name, e.g. "SpikeRate-v0" (or "neuroctl/<name>")
    env_options: dict[str, Any] = field(default_factory=dict)  # `make` keywords
    env_params: dict[str, float] = field(default_factory=dict)  # scalar overrides
    policy: str = "mlp"  # one of POLICY_KINDS
    hidden: int = 32  # hidden units of mlp/gru [1]
    n_bins: int = 20  # bins of open_loop [1]
    init_fraction: float = 0.5  # fresh action: low + f·(high − low) [1]
    precision: Precision = "float32"  # env and policy dtype
    train: bptt.BPTTConfig = bptt.BPTTConfig()
    wrap: tuple[str, ...] = ()  # policy wrappers (`policies.wrappers.WRAPPERS`)
    init_from: str | None = None  # a run dir whose best params start this run

    def __post_init__(self) -> None:
        if self.policy not in POLICY_KINDS:
            raise bad_value(
                "policy", self.policy, f"one of {POLICY_KINDS}", "pick one."
            )
        if self.precision not in ("float32", "float64"):
            raise bad_value(
                "precision", self.precision, "'float32' or 'float64'", "pick one."
            )
        for name in self.wrap:
            if name not in WRAPPERS:
                raise bad_value(
                    "wrap", name, f"one of {sorted(WRAPPERS)}", "pick from those."
                )
        if "dtype" in self.env_options:
            raise bad_value(
                "env_options.dtype",
                self.env_options["dtype"],
                "no dtype option (the run's precision sets it)",
                "use --precision.",
            )

    def as_record(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls, record: dict) -> "RunSpec":
        fields = dict(record)
        fields["train"] = bptt.BPTTConfig(**fields["train"])
        fields["wrap"] = tuple(fields.get("wrap", ()))
        fields["env_options"] = {
            k: tuple(v) if isinstance(v, list) else v
            for k, v in fields["env_options"].items()
        }
        return cls(**fields)


def set_precision(precision: Precision) -> None:
    """Turn on JAX's float64 where the run needs it (before any array is made)."""
    if precision == "float64" and not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)


def build_env(spec: RunSpec) -> tuple[AbstractEnv, Any]:
    """The env of `spec` and its params (defaults with the overrides applied)."""
    set_precision(spec.precision)
    env = make(spec.env, dtype=spec.precision, **spec.env_options)
    params = override_params(env.default_params, spec.env_params, env.param_aliases())
    return env, env.prepare_params(params)


def new_policy(spec: RunSpec, io: PolicyIO, env: AbstractEnv):
    """The fresh policy of `spec` for an env with interface `io`."""
    policy = build_policy(
        spec.policy,
        io,
        seed=spec.train.seed,
        hidden=spec.hidden,
        n_bins=spec.n_bins,
        init_fraction=spec.init_fraction,
        dtype=env.config.jnp_dtype,
    )
    return wrap(policy, io, spec.wrap, env.config.jnp_dtype)


@dataclass(frozen=True)
class RunOptions:
    """Where and how often a run writes (no influence on the maths)."""

    out: Path  # run directory
    iterations: int  # total iterations to reach [1]
    save_every: int = 10  # checkpoint period [iterations]
    keep: int = 2  # checkpoints kept [1]
    resume: bool = False  # continue from the newest checkpoint in `out`
    progress: bool = True  # show a tqdm bar
    validate_every: int = 10  # validation period [iterations]
    validate_episodes: int = 16  # fixed validation episodes [1]
    devices: int = 1  # split each batch over this many devices [1]; 1: no mesh


class Trained(NamedTuple):
    """What `train_run` returns.

    Attributes:
        env, env_params: the run's env and its params.
        parts: the policy's graph (`neuroctl.policies.base.split`).
        state: the final `bptt.TrainState`.
        best_params: the parameters with the best validation return.
        best_iteration: the iteration they come from [1].
        best_return: their mean validation return [1].
    """

    env: AbstractEnv
    env_params: Any
    parts: Parts
    state: bptt.TrainState
    best_params: dict
    best_iteration: int
    best_return: float


def _upgrade(saved: dict) -> dict:
    """A run record written before `RunSpec.wrap` / `init_from` existed."""
    if "spec" in saved:
        old = saved["spec"]
        spec = {"wrap": [], "init_from": None, **old}
        if spec != old:
            return dict(saved, spec=spec)
    return saved


def initial_params(spec: RunSpec, params: dict) -> dict:
    """`params`, or the best-validated params of the run ``spec.init_from``.

    Only the trainable parameters come from that run (cast to this run's dtype);
    the action bounds and observation scaling are this run's own. Its policy must
    have the same kind, size and wrappers, and its env the same observation and
    action sizes.
    """
    if spec.init_from is None:
        return params
    source = Path(spec.init_from)
    theirs = read_record(source).get("spec", {}).get("precision")
    if theirs == "float64" and spec.precision == "float32":
        raise bad_value(
            "init_from",
            str(source),
            "a float32 run (a float64 run would turn on float64 in this one)",
            "train this run with --precision float64.",
        )
    *_, loaded = load_run(source)
    same = jax.tree.structure(params) == jax.tree.structure(loaded) and all(
        jnp.shape(a) == jnp.shape(b)
        for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(loaded), strict=False)
    )
    if not same:
        raise bad_value(
            "init_from",
            str(source),
            "a run of the same policy kind, size and wrappers on an env with the "
            "same observation and action sizes",
            "train from scratch, or pick a run built like this one.",
        )
    return jax.tree.map(lambda new, old: jnp.asarray(old, new.dtype), params, loaded)


def train_run(spec: RunSpec, opts: RunOptions) -> Trained:
    """Train (or resume) `spec` in `opts.out`, keeping the best-validated params."""
    env, env_params = build_env(spec)
    compare = {"spec": spec.as_record()}
    with RunDir(
        opts.out, compare, opts.resume, opts.keep, compare, upgrade=_upgrade
    ) as run:
        io = _run_io(run, env, env_params, spec)
        parts, params = split(new_policy(spec, io, env))
        # a resume restores its checkpoint: the --init-from source is read once
        start = params if opts.resume else initial_params(spec, params)
        state, notes = run.restore(bptt.init_state(start, spec.train))
        for note in notes:
            print(f"neuroctl: {note}; using an older checkpoint")
        mesh = sharding.data_mesh(opts.devices) if opts.devices > 1 else None
        if mesh is not None:  # results equal one device's up to float rounding
            state = sharding.replicate(state, mesh)
        step_fn = bptt.make_train_step(env, env_params, parts, spec.train, mesh)
        keys = bptt.validation_keys(opts.validate_episodes)
        validate = bptt.make_validation(env, env_params, parts, keys, mesh)
        best = _Best(run, validate, state)
        if best.step is None:  # a fresh run: the starting point is a candidate
            best.check(state)
        state = _fit(run, step_fn, state, opts, best)
    return Trained(env, env_params, parts, state, *best.result())


class _Best:
    """The best-validated params of a run so far (resumes from its run dir)."""

    def __init__(self, run: RunDir, validate, state: bptt.TrainState):
        self.run, self.validate = run, validate
        self.params, self.step, self.value = _restore_best(run, state.params)

    def check(self, state: bptt.TrainState) -> float:
        """Validate `state`'s params; keep them if they are the best so far."""
        value = float(self.validate(state.params))
        if value > self.value or self.step is None:
            self.value, self.params, self.step = value, state.params, int(state.step)
            tree = {"params": state.params, "val_return": jnp.asarray(value)}
            self.run.save_best(self.step, tree)
        return value

    def result(self) -> tuple[dict, int, float]:
        return self.params, int(self.step), float(self.value)


def _run_io(run: RunDir, env, env_params, spec: RunSpec) -> PolicyIO:
    """The saved `PolicyIO` of a resumed run, else measured and recorded."""
    if "io" in run.record:
        return io_from_record(run.record["io"])
    io = policy_io_for(env, env_params, spec)
    run.record = dict(run.record, io=dataclasses.asdict(io))
    run.write_json("config.json", run.record)
    return io


def policy_io_for(env, env_params, spec: RunSpec) -> PolicyIO:
    return bptt.policy_io(env, env_params, spec.init_fraction)


def io_from_record(record: dict) -> PolicyIO:
    """The `PolicyIO` saved as JSON/TOML (lists back to tuples)."""
    return PolicyIO(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in record.items()}
    )


def _fit(run: RunDir, step_fn, state, opts: RunOptions, best: _Best):
    def validate(state, i: int) -> dict[str, float]:
        if i % opts.validate_every == 0 or i == opts.iterations:
            return {"val_return": best.check(state)}
        return {}

    return loop.fit(
        run,
        step_fn,
        state,
        opts.iterations,
        save_every=opts.save_every,
        progress=opts.progress,
        postfix={"ret": "episode_return", "val": "val_return"},
        after_step=validate,
    )


def load_run(out: Path, best: bool = True):
    """``(spec, env, env_params, parts, params)`` of a run.

    The params are its best-validated ones (with ``best=False``, or if none were
    saved, its newest checkpoint's).
    """
    record = read_record(out)
    try:
        spec = RunSpec.from_record(record["spec"])
        io = io_from_record(record["io"])
    except (KeyError, TypeError) as err:
        raise ConfigError(
            f"run: {out}/config.json lacks {err}; pass a run directory written by "
            "`neuroctl train`."
        ) from None
    env, env_params = build_env(spec)
    parts, params = split(new_policy(spec, io, env))
    with RunDir.open(out) as run:
        state, _ = run.restore(bptt.init_state(params, spec.train))
        best_params, step, _ = _restore_best(run, state.params)
    use_best = best and step is not None
    return spec, env, env_params, parts, best_params if use_best else state.params


def _restore_best(run: RunDir, params: dict) -> tuple[dict, int | None, float]:
    """The best params, their iteration and validation return (-inf if none).

    Runs written before the validation return was stored beside the params hold
    the params alone (their return is then unknown: -inf).
    """
    like = {"params": params, "val_return": jnp.zeros(())}
    try:
        saved, step = run.restore_best(like)
    except (ValueError, KeyError, TypeError):
        saved_params, step = run.restore_best(params)
        return saved_params, step, -math.inf
    if step is None:
        return params, None, -math.inf
    return saved["params"], step, float(saved["val_return"])


__all__ = [
    "Parts",
    "RunOptions",
    "RunSpec",
    "build_env",
    "load_run",
    "override_params",
    "train_run",
]
