"""BPTT trainer for the evidence-integration plant: a pure jitted step + a thin loop.

One iteration draws ``batch`` trials from a key, runs every 520-ms trial (20,800
steps of 0.025 ms) through the network with multilevel gradient checkpointing
(``checkpoint_lengths = (28, 28, 27)``), averages the softmax cross-entropy of the
readout means and takes one Adam step on the unconstrained logits of
`TrainableParams` (sigmoid-bounded conductances and input weights), after the
paper's per-leaf gradient normalisation ``g ← g / ‖g‖^0.8``
(`scale_by_leaf_norm_power`). Jaxley paper, fig. 5; ../../shared/FACTS.md.

Randomness (deterministic for a seed; keys split by purpose):

* initial parameters: ``fold_in(key(seed), 1)``;
* the trials of iteration ``i``: ``fold_in(fold_in(key(seed), 0), i)``, split into
  ``batch`` trial keys — so a resumed run draws exactly the trials it would have;
* held-out evaluation: a separate root ``key(EVAL_SEED)`` with ``EVAL_SEED = 2**31 - 1``
  (`evaluation_keys`), never folded into a training key; `TrainConfig` rejects
  ``seed == EVAL_SEED``.

Precision (measured with scripts/plant_gradient_precision.py, one full 520-ms trial,
default init (g ≈ 0.1·g_max, w ≈ 0.5), checkpointed gradient, loaded 2-core CPU):
* float32 vs float64 gradient (same params, same trial): relative error
  ‖g32 − g64‖/‖g64‖ = 0.91, 0.003 and 0.98 on three trials (cosine 0.45, 0.99996,
  0.44); even the f32 loss differs by up to 0.008 nats: the spiking network is
  chaotic at init and f32 rounding moves the trajectory.
* Which one is right: central finite differences of the float64 loss along the
  gradient direction (h = 1e-8 in logit space; larger h is outside the linear
  regime of this chaotic loss) give 69.07 vs f64 autodiff 68.40 and 4.91948 vs
  4.91945. Along the f32 gradient of the bad trial the true (f64) directional
  derivative is −48.7: a step against the f32 gradient *increases* the loss.
* Cost (batch 8, checkpointed, full trials, jit compile excluded): float64 14 s
  per iteration, float32 7.7 s (compile ≈ 50 s either way).

So training runs in **float64** (``precision="float64"``, needs jax_enable_x64);
float32 is twice as fast but its gradients are not trustworthy on full trials.

Initialisation (what trained): with g = 0.1·g_max (the network's default 0.001 µS)
the net fires at 20–26 Hz whatever the stimulus, a recurrent synapse (≈ 65 pA)
dwarfs the ≈ 1–2 pA stimulus, gradient norms jump between 2 and 8,000 and 98
iterations (batch 8, lr 0.02) left the batch accuracy at chance. With
g = 0.02·g_max (`init_syn_fraction`, now the default) the net is silent on
negative-evidence trials and fires at ≈ 8 Hz on positive ones; gradient norms stay
at 0.1–0.4. The shipped plant (envs/evidence_integration) trained from there: 80
iterations at lr 0.02, then 80 at lr 0.05 (resumed, `lr_schedule` in its card) —
about 8 s per iteration, 22 min — to 1000/1000 held-out trials.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from neuroctl.biophysics import Network, Params
from neuroctl.errors import bad_value
from neuroctl.plants import evidence_task as et
from neuroctl.train.sharding import Mesh, check_divisible, map_batch
from neuroctl.typing import Array

#: Root seed of held-out evaluation trials; disjoint from every training key.
EVAL_SEED = 2**31 - 1


@dataclass(frozen=True)
class TrainConfig:
    """Static training configuration (changing it recompiles)."""

    seed: int = 0  # root seed of initialisation and training trials [1]
    batch: int = 8  # trials per gradient [1]
    lr: float = 0.01  # Adam learning rate on the logits [1]
    grad_power: float = 0.8  # per-leaf normalisation g / ‖g‖^p [1]
    checkpoint_lengths: tuple[int, ...] = (28, 28, 27)  # nested scan lengths [steps]
    precision: Literal["float32", "float64"] = "float64"  # dtype of params and solver
    init_std: float = 0.1  # std of the initial logits [1]
    init_syn_fraction: float = 0.02  # initial g / g_max [1] (see module docstring)

    def __post_init__(self) -> None:
        self.validate()  # plain dataclass: runs once, never on tracers

    @property
    def dtype(self) -> Any:
        return jnp.float64 if self.precision == "float64" else jnp.float32

    def validate(self) -> "TrainConfig":
        """Raise `ConfigError` naming the first bad field; return `self` otherwise."""
        if not isinstance(self.seed, int) or not 0 <= self.seed < EVAL_SEED:
            raise bad_value(
                "seed",
                self.seed,
                f"an int in [0, {EVAL_SEED})",
                f"{EVAL_SEED} is reserved for held-out evaluation.",
            )
        if not isinstance(self.batch, int) or self.batch < 1:
            raise bad_value("batch", self.batch, "an int >= 1", "e.g. batch=8.")
        for name in ("lr", "init_std"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise bad_value(
                    name, getattr(self, name), "a finite number > 0", "e.g. 0.01."
                )
        if not 0.0 <= self.grad_power < 1.0:
            raise bad_value(
                "grad_power", self.grad_power, "a number in [0, 1)", "e.g. 0.8."
            )
        if not 0.0 < self.init_syn_fraction < 1.0:
            raise bad_value(
                "init_syn_fraction",
                self.init_syn_fraction,
                "a fraction in (0, 1)",
                "e.g. 0.1.",
            )
        if self.precision not in ("float32", "float64"):
            raise bad_value(
                "precision",
                self.precision,
                "'float32' or 'float64'",
                "float64 needs jax_enable_x64.",
            )
        return self


# ----------------------------------------------------------------------- optimiser


class LeafNormPowerState(NamedTuple):
    """`scale_by_leaf_norm_power` is stateless."""


def scale_by_leaf_norm_power(
    power: float = 0.8, eps: float = 1e-20
) -> optax.GradientTransformation:
    """Per-leaf gradient normalisation ``g ← g / ‖g‖₂^power`` (Jaxley paper, fig. 5).

    ``power = 0`` is the identity; ``power = 1`` keeps only each leaf's direction.
    A leaf with ``‖g‖ < eps`` is divided by ``eps^power`` (no 0/0).
    """

    def init_fn(params):
        del params
        return LeafNormPowerState()

    def update_fn(updates, state, params=None):
        del params

        def scale(g):
            norm = jnp.sqrt(jnp.sum(jnp.square(g)))
            return g / jnp.maximum(norm, eps) ** power

        return jax.tree.map(scale, updates), state

    return optax.GradientTransformation(init_fn, update_fn)


def make_optimizer(cfg: TrainConfig) -> optax.GradientTransformation:
    """Leaf normalisation, then Adam at ``cfg.lr``."""
    return optax.chain(scale_by_leaf_norm_power(cfg.grad_power), optax.adam(cfg.lr))


# --------------------------------------------------------------------------- state


class TrainState(eqx.Module):
    """Everything a resumed run needs (the trial keys derive from `step`)."""

    params: et.TrainableParams
    opt_state: optax.OptState
    step: Array  # iterations done [1], int32 scalar


class StepMetrics(NamedTuple):
    """Per-iteration metrics (before the update)."""

    loss: Array  # mean cross-entropy over the batch [nats]
    accuracy: Array  # fraction correct over the batch [1]
    grad_norm: Array  # global ‖∂loss/∂logits‖₂ before normalisation [1]


def init_state(cfg: TrainConfig, n_syn: int, n_inputs: int) -> TrainState:
    """Initial parameters from ``fold_in(key(seed), 1)`` and a fresh optimiser."""
    key = jax.random.fold_in(jax.random.key(cfg.seed), 1)
    syn_mean = math.log(cfg.init_syn_fraction / (1.0 - cfg.init_syn_fraction))
    params = et.init_trainable(key, n_syn, n_inputs, cfg.init_std, syn_mean, cfg.dtype)
    return TrainState(
        params, make_optimizer(cfg).init(params), jnp.zeros((), jnp.int32)
    )


def step_key(cfg: TrainConfig, step: Array | int) -> Array:
    """The key of iteration `step`: ``fold_in(fold_in(key(seed), 0), step)``."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(cfg.seed), 0), step)


def evaluation_keys(n_trials: int, seed: int = EVAL_SEED) -> Array:
    """Keys of the held-out trials: ``split(key(seed), n_trials)``."""
    return jax.random.split(jax.random.key(seed), n_trials)


# ------------------------------------------------------------------------ the step


def batch_loss(
    params: et.TrainableParams,
    trials: et.Trial,
    net: Network,
    net_params: Params,
    task: et.TaskConfig,
    lengths: Sequence[int] | None,
    mesh: Mesh | None = None,
) -> tuple[Array, tuple[Array, Array]]:
    """Mean cross-entropy [nats] over a batch of trials and ``(logits, labels)``.

    With a `mesh` the trials are split over its devices (`sharding.map_batch`).
    """

    def one(p, trial):
        return et.trial_loss(net, net_params, p, trial, task, lengths)

    losses, (logits, labels) = map_batch(one, mesh)(params, trials)
    return jnp.mean(losses), (logits, labels)


def make_train_step(
    net: Network,
    net_params: Params,
    task: et.TaskConfig,
    cfg: TrainConfig,
    mesh: Mesh | None = None,
) -> Callable[[TrainState, Array], tuple[TrainState, StepMetrics]]:
    """A jitted ``train_step(state, key) -> (state, metrics)`` (pure; net static).

    With a `mesh` (`neuroctl.train.sharding.data_mesh`) the trials are split over
    its devices (``cfg.batch`` a multiple of their count); the state is replicated.
    """
    check_divisible("batch", cfg.batch, mesh)
    optimizer = make_optimizer(cfg)
    lengths = cfg.checkpoint_lengths if cfg.checkpoint_lengths else None
    grad_fn = jax.value_and_grad(batch_loss, has_aux=True)

    @jax.jit
    def train_step(state: TrainState, key: Array) -> tuple[TrainState, StepMetrics]:
        keys = jax.random.split(key, cfg.batch)
        trials = jax.vmap(lambda k: et.sample_trial(k, task))(keys)
        (loss, (logits, labels)), grads = grad_fn(
            state.params, trials, net, net_params, task, lengths, mesh
        )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        acc = jnp.mean(jax.vmap(et.accuracy)(logits, labels))
        metrics = StepMetrics(loss, acc, optax.tree.norm(grads))
        return TrainState(params, opt_state, state.step + 1), metrics

    return train_step


def fit(
    train_step: Callable[[TrainState, Array], tuple[TrainState, StepMetrics]],
    state: TrainState,
    cfg: TrainConfig,
    iterations: int,
    on_step: Callable[[TrainState, StepMetrics], None] | None = None,
) -> TrainState:
    """Run `train_step` until ``state.step == iterations``; `on_step` after each."""
    for i in range(int(state.step), iterations):
        state, metrics = train_step(state, step_key(cfg, i))
        if on_step is not None:
            on_step(state, metrics)
    return state


# ---------------------------------------------------------------------- evaluation


def make_evaluate(
    net: Network, net_params: Params, task: et.TaskConfig, evidence: float | None = None
) -> Callable[[et.TrainableParams, Array], tuple[Array, Array]]:
    """Jitted ``evaluate(params, keys) -> (logits (n, 2) [mV], labels (n,))``.

    Forward only (no checkpointing); vmapped over the keys given (call it on chunks).
    """

    @jax.jit
    def evaluate(params: et.TrainableParams, keys: Array) -> tuple[Array, Array]:
        def one(k):
            trial = et.sample_trial(k, task, evidence)
            rec = et.simulate_trial(net, net_params, params, trial.stimulus, task)
            return et.readout_logits(rec, task), trial.label

        return jax.vmap(one)(keys)

    return evaluate
