"""Pin what every shipped policy does on 64 held-out trials (the redesign's anchor).

Writes tests/reference/shipped_policies_64.json: per shipped policy, its and the g = 1
baseline's held-out summary on ``evaluation_keys(64)`` (correct trials, mean current
power [nA²], charge [pC], mean gain, smallest margin [mV]) and the gains [1] of the
first trial. tests/policies/test_shipped_policies.py checks every later commit
against it, so a refactor that changes what a shipped policy does fails loudly.

    python scripts/pin_shipped_policies.py      # ~5 min on 2 cores
"""

import json
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

from neuroctl.plants import load  # noqa: E402
from neuroctl.policies import load_policy  # noqa: E402
from neuroctl.train import policy as tp  # noqa: E402
from neuroctl.train.plant import evaluation_keys  # noqa: E402
from neuroctl.train.policy_eval import evaluate, gain_trace  # noqa: E402
from neuroctl.train.ship import provenance  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "reference" / "shipped_policies_64.json"
NAMES = (
    "evidence_gain_mlp",
    "evidence_gain_gru",
    "evidence_switched_profile",
    "evidence_current_profile",
    "evidence_feedback_profile",
    "evidence_tracking_profile",
)
FIELDS = ("correct", "current_power", "charge", "mean_gain", "min_margin")


def pin(name: str) -> dict:
    policy, spec, _ = load_policy(name)
    env, env_params = tp.make_env(
        load(spec.plant), tp.PolicyTrainConfig.from_spec(spec)
    )
    result = evaluate(env, env_params, policy, 64, chunk=64)
    first = gain_trace(env, env_params, policy, evaluation_keys(1)[0])
    return {
        "policy": {k: result["policy"][k] for k in FIELDS},
        "baseline": {k: result["baseline"][k] for k in FIELDS},
        "first_trial_gains": [float(g) for g in first.gains],
    }


def main() -> None:
    pins = {name: pin(name) for name in NAMES}
    record = {"trials": 64, "provenance": provenance(), "policies": pins}
    OUT.write_text(json.dumps(record, indent=1))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
