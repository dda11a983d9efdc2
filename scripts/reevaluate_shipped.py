"""Re-evaluate every shipped policy on its card's 1,000 held-out trials, at this code.

Each policy in ``policies/`` is loaded through the sealed loader, run on the
shipped plant on the same 1,000 held-out trials (root seed 2**31-1) its card
(metrics.json) was measured on, next to the ``g = 1`` baseline, and compared
with the card: correct trials exactly, power, charge and mean gain to the
printed digit (4 significant digits) — any difference is listed.

Writes results/shipped_reevaluation.md and .json; per-policy results are cached
in runs/reevaluation/ (delete it to recompute), so a stop loses nothing.

Usage: python scripts/reevaluate_shipped.py [--trials N]   (about 3 min per policy
on one core); a smoke run (tests/scripts): ``--trials 2 --policies
evidence_gain_mlp --out <tmp>/shipped_reevaluation --cache <tmp>/cache``.
"""

import argparse
import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

from neuroctl.io.artefacts import shipped_root  # noqa: E402
from neuroctl.io.runs import read_json, write_json_atomic  # noqa: E402
from neuroctl.plants import load  # noqa: E402
from neuroctl.policies.shipped import load_policy  # noqa: E402
from neuroctl.train import policy as tp  # noqa: E402
from neuroctl.train.policy_eval import evaluate  # noqa: E402
from neuroctl.train.ship import provenance  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "runs" / "reevaluation"
FIELDS = ("current_power", "charge", "mean_gain")


def _same(a: float, b: float, digits: int = 4) -> bool:
    return f"{a:.{digits - 1}e}" == f"{b:.{digits - 1}e}"


def reevaluate(folder: Path, plant, trials: int, cache_dir: Path = CACHE) -> dict:
    """The policy's evaluation now and on its card (cached per policy)."""
    cache = cache_dir / f"{folder.name}_{trials}.json"
    if (done := read_json(cache)) is not None:
        return done
    policy, spec, card = load_policy(folder, plant=plant)
    cfg = tp.PolicyTrainConfig.from_spec(spec)
    env, env_params = tp.make_env(plant, cfg)
    print(f"{folder.name}: {trials} trials", flush=True)
    now = evaluate(env, env_params, policy, trials, progress=True)
    result = {"name": folder.name, "now": now, "card": card["evaluation"]}
    cache_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(cache, result)
    return result


def compare(result: dict) -> list[str]:
    """Every difference between the card and now, as text ([] if none)."""
    diffs = []
    for who in ("policy", "baseline"):
        a, b = result["card"][who], result["now"][who]
        if a["correct"] != b["correct"] or a["trials"] != b["trials"]:
            diffs.append(
                f"{who} correct {a['correct']}/{a['trials']} → "
                f"{b['correct']}/{b['trials']}"
            )
        diffs += [
            f"{who} {k} {a[k]:.4g} → {b[k]:.4g}"
            for k in FIELDS
            if not _same(a[k], b[k])
        ]
    return diffs


def table(results: list[dict]) -> str:
    lines = [
        "# Shipped policies re-evaluated at this code",
        "",
        "`python scripts/reevaluate_shipped.py` — each shipped policy loaded through "
        "the sealed loader and run on the shipped plant on its card's held-out "
        f"trials (root seed {results[0]['now']['eval_seed']}, float64), beside "
        'g = 1 on the same trials. "matches": correct trials equal and power, '
        "charge and mean gain equal to 4 significant digits (the printed digits). "
        "The baseline runs in each policy's env, so at its control period: "
        "`evidence_tracking_profile` acts every 0.25 ms, hence its slightly "
        "different g = 1 power.",
        "",
        "| policy | correct (card → now) | power [nA²] (card → now) | charge [pC] | "
        "mean gain | baseline power [nA²] | matches |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        c, n = r["card"]["policy"], r["now"]["policy"]
        cb, nb = r["card"]["baseline"], r["now"]["baseline"]
        diffs = compare(r)
        lines.append(
            f"| `{r['name']}` | {c['correct']}/{c['trials']} → "
            f"{n['correct']}/{n['trials']} | {c['current_power']:.4g} → "
            f"{n['current_power']:.4g} | {c['charge']:.4g} → {n['charge']:.4g} | "
            f"{c['mean_gain']:.4g} → {n['mean_gain']:.4g} | "
            f"{cb['current_power']:.4g} → {nb['current_power']:.4g} | "
            f"{'yes' if not diffs else 'no: ' + '; '.join(diffs)} |"
        )
    p = provenance()
    lines += [
        "",
        f"git {p['git_commit']}, neuroctl {p['neuroctl_version']}, {p['date_utc']}",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument(
        "--policies", nargs="+", default=None, help="shipped folder names; default: all"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "results" / "shipped_reevaluation",
        help="writes OUT.md and OUT.json",
    )
    parser.add_argument("--cache", type=Path, default=CACHE, help="per-policy results")
    args = parser.parse_args(argv)
    plant = load("evidence_integration")
    folders = sorted(p.parent for p in shipped_root("policies").glob("*/spec.toml"))
    if args.policies is not None:
        unknown = sorted(set(args.policies) - {f.name for f in folders})
        if unknown:
            names = [f.name for f in folders]
            parser.error(f"--policies: got {unknown}, not shipped; pick from {names}")
        folders = [f for f in folders if f.name in args.policies]
    results = [reevaluate(f, plant, args.trials, args.cache) for f in folders]
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out.with_suffix(".json"), results)
    out.with_suffix(".md").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main(sys.argv[1:])
