"""Regenerate results/reliability.md and results/reliability.json.

Runs the adversarial checks of tests/adversarial (tests/adversarial/
adversarial_checks.py) at larger counts than CI does, on copies of the shipped
folders, and tabulates every attempt: handled (refused with a clear error naming
the input, or provably unchanged) or failed (with its reason). Takes ~15 min on
one core::

    nice -n 10 python scripts/reliability.py            # everything
    python scripts/reliability.py --quick               # CI-sized counts (~3 min)
    python scripts/reliability.py --areas cli solver    # some areas only
"""

import argparse
import datetime
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "adversarial"))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)  # the shipped plants are float64

import adversarial_checks as ac  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

WHOLE = ("spec.toml", "metrics.json", "seal.json")


def artefact_edits(work: Path, quick: bool) -> list[ac.Outcome]:
    def per_file(rel: str):
        if quick:
            return 12
        return None if rel in WHOLE else 100

    return ac.artefact_edits(work, per_file, seed=2024)


def forged_edits(work: Path, quick: bool) -> list[ac.Outcome]:
    return ac.forged_checkpoint_edits(work, 3 if quick else 12, seed=2024)


def hostile_files(work: Path, quick: bool) -> list[ac.Outcome]:
    return ac.hostile_files(work, seed=2024, repeats=1 if quick else 3)


def kill_write(work: Path, quick: bool) -> list[ac.Outcome]:
    return ac.kill_during_write(work, trials=4 if quick else 30, seed=2024)


def kill_training(work: Path, quick: bool) -> list[ac.Outcome]:
    trials = 2 if quick else 8
    return ac.kill_during_training(work, trials=trials, iterations=6, seed=2024)


def cli(work: Path, quick: bool) -> list[ac.Outcome]:
    return ac.cli_bad_values(work, ac.cli_cases(), timeout=30)


def _collect(strategy, check, examples: int) -> list[ac.Outcome]:
    """`check` over `examples` hypothesis draws; every outcome kept (no shrinking)."""
    outcomes: list[ac.Outcome] = []
    run = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )(given(strategy)(lambda case: outcomes.append(check(case))))
    run()
    return outcomes


def solver(work: Path, quick: bool) -> list[ac.Outcome]:
    n = 40 if quick else 300
    fields = ac.mechanism_fields("GradedSynapse")

    def morph(case):
        parents, kw = case
        case = f"from_parents{parents} {kw}"
        return ac.classify_build(
            "solver", case, lambda: ac.morphology_net(parents, **kw)
        )

    def mech(case):
        name, field, value = case
        return ac.classify_build(
            "solver", f"{name}({field}={value!r})", lambda: ac.mechanism_net(*case)
        )

    def syn(case):
        field, value = case
        return ac.classify_build(
            "solver",
            f"GradedSynapse({field}={value!r})",
            lambda: ac.synapse_net(field, value),
        )

    synapses = st.tuples(st.sampled_from(fields), ac.hostile_floats())
    return (
        _collect(ac.geometry(), morph, n)
        + _collect(ac.mechanism_case(), mech, n)
        + _collect(synapses, syn, n)
        + _mechanism_grid()
    )


def _mechanism_grid() -> list[ac.Outcome]:
    """Every mechanism parameter at every extreme value (deterministic)."""
    outcomes = []
    for name in ac.MECHANISMS:
        for field in ac.mechanism_fields(name):
            for value in ac.EXTREMES:
                outcomes.append(
                    ac.classify_build(
                        "solver",
                        f"{name}({field}={value!r})",
                        lambda n=name, f=field, v=value: ac.mechanism_net(n, f, v),
                    )
                )
    return outcomes


def env_inputs(work: Path, quick: bool) -> list[ac.Outcome]:
    n = 40 if quick else 300
    names = ac.env_param_names()
    params = st.tuples(st.sampled_from(names), ac.hostile_floats(), st.booleans())
    outcomes = _collect(ac.hostile_actions(), ac.env_action_outcome, n)
    outcomes += _collect(
        params, lambda c: ac.env_param_outcome(c[0], float(c[1]), c[2]), n
    )
    for name in names:
        for value in ac.EXTREMES:
            for traced in (True, False):
                outcomes.append(ac.env_param_outcome(name, value, traced))
    area = "env actions/params"
    return [ac.Outcome(area, o.case, o.handled, o.reason) for o in outcomes]


def rollouts(work: Path, quick: bool) -> list[ac.Outcome]:
    return ac.rollouts_across_processes(work, processes=3)


def crash_windows(work: Path, quick: bool) -> list[ac.Outcome]:
    """Deterministic kills in the windows random moments rarely hit."""
    return ac.crash_windows(work)


AREAS = {
    "artefact edits": artefact_edits,
    "forged-seal edits": forged_edits,
    "hostile files": hostile_files,
    "kill -9 write": kill_write,
    "kill -9 training": kill_training,
    "CLI bad values": cli,
    "solver constructors": solver,
    "env actions/params": env_inputs,
    "rollouts across processes": rollouts,
    "crash windows (forced)": crash_windows,
}
KEYS = {
    "artefact edits": lambda c: c.split("/")[0] + " " + c.split()[-1],
    "forged-seal edits": lambda c: c.split("/")[0],
    "hostile files": lambda c: c.split(" ", 1)[1],
    "CLI bad values": lambda c: c.split()[0],
    "solver constructors": lambda c: c.split("(")[0].split("[")[0],
    "env actions/params": lambda c: (
        " ".join(c.split()[1:2]).split("=")[0]
        + (" (traced)" if "(traced)" in c else "")
    ),
}


def git_commit() -> str:
    def git(*args):
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=REPO
        ).stdout.strip()

    changed = git("status", "--porcelain")
    dirty = " (working tree has uncommitted changes)" if changed else ""
    return git("rev-parse", "HEAD") + dirty


def run_areas(names: list[str], quick: bool, work: Path) -> dict:
    results = {}
    for name in names:
        t0 = time.perf_counter()
        area_dir = work / name.replace(" ", "_").replace("/", "_")
        area_dir.mkdir()
        print(f"[reliability] {name} ...", flush=True)
        try:
            outcomes = AREAS[name](area_dir, quick)
        except Exception as err:  # noqa: BLE001 — a crashed check is a finding too
            outcomes = [ac.Outcome(name, "the check itself", False, repr(err)[:500])]
        seconds = time.perf_counter() - t0
        results[name] = {"seconds": round(seconds, 1), "outcomes": outcomes}
        bad = sum(not o.handled for o in outcomes)
        print(
            f"[reliability] {name}: {len(outcomes)} attempts, {bad} failed, "
            f"{seconds:.0f} s",
            flush=True,
        )
    return results


def breakdown(name: str, outcomes: list[ac.Outcome]) -> list[tuple[str, int, int]]:
    key = KEYS.get(name)
    if key is None:
        return []
    rows: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for o in outcomes:
        rows[key(o.case)][0 if o.handled else 1] += 1
    return sorted((k, h, f) for k, (h, f) in rows.items())


def failures(outcomes: list[ac.Outcome]) -> list[tuple[str, int, str]]:
    """(reason, count, example cases), one per distinct reason."""
    by_reason: dict[str, list[str]] = defaultdict(list)
    for o in outcomes:
        if not o.handled:
            reason = re.sub(
                r"/tmp/reliability-[^/]+/[^/]+/(cli\d+/)?", "<tmp>/", o.reason
            )
            by_reason[" ".join(reason.split())[:300]].append(o.case)
    rows = [(r, len(c), "`, `".join(c[:4])) for r, c in by_reason.items()]
    return sorted(rows, key=lambda x: -x[1])


def markdown(results: dict, meta: dict) -> str:
    lines = [
        "# Reliability: adversarial checks",
        "",
        f"Generated by `scripts/reliability.py`{' --quick' if meta['quick'] else ''} "
        f"on {meta['date']} at commit `{meta['commit']}`; {meta['machine']}; "
        f"{meta['seconds']:.0f} s. The checks live in "
        "`tests/adversarial/adversarial_checks.py`; CI runs them at smaller counts "
        "(`tests/adversarial`). *Handled* = refused with a `ConfigError`/"
        "`CheckpointError` (or a CLI error) naming the file or option, or provably "
        "unchanged (an identical load, a finite simulation); *failed* = anything "
        "else (a silent load, a traceback, an unflagged non-finite output, ...).",
        "",
        "| area | attempts | handled | failed | time [s] |",
        "|---|---:|---:|---:|---:|",
    ]
    total = [0, 0, 0]
    for name, r in results.items():
        n, bad = len(r["outcomes"]), sum(not o.handled for o in r["outcomes"])
        total = [total[0] + n, total[1] + n - bad, total[2] + bad]
        lines.append(f"| {name} | {n} | {n - bad} | {bad} | {r['seconds']:.0f} |")
    lines.append(f"| **total** | **{total[0]}** | **{total[1]}** | **{total[2]}** | |")
    for name, r in results.items():
        lines += _area_section(name, r["outcomes"])
    return "\n".join(lines) + "\n"


def _area_section(name: str, outcomes: list[ac.Outcome]) -> list[str]:
    lines = ["", f"## {name}", ""]
    rows = breakdown(name, outcomes)
    if rows:
        lines += ["| case | attempts | handled | failed |", "|---|---:|---:|---:|"]
        lines += [f"| {k} | {h + f} | {h} | {f} |" for k, h, f in rows]
        lines.append("")
    fails = failures(outcomes)
    if not fails:
        notes = Counter(o.reason for o in outcomes)
        lines.append(
            "No failures. Outcomes: "
            + "; ".join(f"{r} ×{c}" for r, c in notes.most_common(4))
            + "."
        )
        return lines
    lines.append("Failures (distinct reasons):")
    lines.append("")
    for reason, count, example in fails:
        lines.append(f"- ×{count}: {reason} — e.g. `{example}`")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized counts")
    parser.add_argument("--areas", nargs="*", default=list(AREAS), choices=list(AREAS))
    parser.add_argument("--out", type=Path, default=REPO / "results" / "reliability")
    args = parser.parse_args()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
        results = run_areas(args.areas, args.quick, Path(tmp))
    meta = {
        "commit": git_commit(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, Python {platform.python_version()}, "
        f"JAX {jax.__version__}",
        "quick": args.quick,
        "seconds": time.perf_counter() - t0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(markdown(results, meta))
    data = {
        **meta,
        "areas": {
            name: {
                "seconds": r["seconds"],
                "attempts": len(r["outcomes"]),
                "handled": sum(o.handled for o in r["outcomes"]),
                "failed": sum(not o.handled for o in r["outcomes"]),
                "failures": [
                    {"case": o.case, "reason": o.reason}
                    for o in r["outcomes"]
                    if not o.handled
                ],
            }
            for name, r in results.items()
        },
    }
    args.out.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {args.out.with_suffix('.md')} and .json")


if __name__ == "__main__":
    main()
