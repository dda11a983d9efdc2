"""The one training loop at the edge, shared by policy and plant training.

`fit` steps a jitted ``step_fn(state) -> (state, metrics)`` until
``state.step == iterations``, logging every iteration to the run's JSONL log,
showing a tqdm bar, and checkpointing through `neuroctl.io.runs.RunDir` every
``save_every`` iterations and at the end. What a step computes is the trainer's
business; where it is written is the run directory's.
"""

import collections
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax

from neuroctl.io.runs import RunDir


def _scalars(metrics: Any) -> dict[str, float]:
    """Metric name → float; a dict-valued entry logs its items under their names."""
    values = metrics._asdict() if hasattr(metrics, "_asdict") else dict(metrics)
    out = {}
    for k, v in jax.device_get(values).items():
        if isinstance(v, Mapping):
            out.update((name, float(x)) for name, x in v.items())
        else:
            out[k] = float(v)
    return out


def _means(recent, postfix: Mapping[str, str]) -> dict[str, str]:
    """Bar label → mean of its metric over the recent iterations that logged it."""
    out = {}
    for label, key in postfix.items():
        seen = [r[key] for r in recent if key in r]
        if seen:
            out[label] = f"{sum(seen) / len(seen):.4g}"
    return out


def fit(
    run: RunDir,
    step_fn: Callable[[Any], tuple[Any, Any]],
    state: Any,
    iterations: int,
    *,
    save_every: int,
    progress: bool = True,
    desc: str = "train",
    postfix: Mapping[str, str] | None = None,
    window: int = 10,
    after_step: Callable[[Any, int], Mapping[str, float]] | None = None,
) -> Any:
    """Train from `state` to ``iterations``; the final state (checkpointed).

    Args:
        run: the run directory (log and checkpoints).
        step_fn: one iteration, ``state -> (state, metrics)``; ``state.step``
            counts iterations and `metrics` is a NamedTuple (or dict) of scalars.
        state: where to start (fresh or restored).
        iterations: the iteration count to reach [1].
        save_every: checkpoint period [iterations].
        progress: show a tqdm bar.
        desc: the bar's label.
        postfix: bar label → metric key, shown as its mean over the last
            `window` iterations that logged it.
        window: iterations averaged in the bar [1].
        after_step: ``(state, iteration) -> extra metrics`` (e.g. a validation),
            logged with the step's own.
    """
    from tqdm.auto import tqdm

    postfix = postfix or {}
    recent = collections.deque(maxlen=window)
    bar = tqdm(
        total=iterations,
        initial=int(state.step),
        disable=not progress,
        unit="it",
        desc=desc,
        dynamic_ncols=True,
    )
    try:
        while int(state.step) < iterations:
            t0 = time.perf_counter()
            state, metrics = step_fn(state)
            values, i = _scalars(metrics), int(state.step)
            if after_step is not None:
                values.update(after_step(state, i))
            run.log(i, values, time.perf_counter() - t0)
            recent.append(values)
            bar.set_postfix(_means(recent, postfix))
            bar.update(1)
            if i % save_every == 0:
                run.save(i, state)
        if run.latest_step() != int(state.step):
            run.save(int(state.step), state, force=True)
    finally:
        bar.close()
    return state


__all__ = ["fit"]
