"""Bit flips and byte edits of every file of every shipped folder: 0 silent loads."""

import shutil

import pytest
from adversarial_checks import (
    artefact_edits,
    base_of,
    classify_load,
    fingerprint,
    forged_checkpoint_edits,
    load_artefact,
    reseal,
    shipped_folders,
    summarise,
)

WHOLE = ("spec.toml", "metrics.json", "seal.json")  # every byte in the slow variant


def test_the_shipped_folders_are_all_found():
    names = {folder.name for _, folder in shipped_folders()}
    assert {"evidence_integration", "evidence_gain_mlp", "evidence_gain_gru"} <= names


def test_sampled_edits_of_every_file_are_refused_naming_it(tmp_path):
    outcomes = artefact_edits(tmp_path, lambda rel: 12, seed=17)
    files = {o.case.split("@")[0] for o in outcomes}
    assert len(files) >= 8 * 12  # every file of every folder was edited
    assert all(o.handled for o in outcomes), summarise(outcomes)


@pytest.mark.slow
def test_every_byte_of_spec_card_and_seal_and_dense_checkpoint_edits(tmp_path):
    def per_file(rel):
        return None if rel in WHOLE else 200

    outcomes = artefact_edits(tmp_path, per_file, seed=1)
    assert all(o.handled for o in outcomes), summarise(outcomes)


def test_the_check_sees_a_silent_load(tmp_path):
    """A spec edit behind a forged seal loads a different plant: reported as such."""
    artefact, src = next(
        f for f in shipped_folders() if f[1].name == "evidence_integration"
    )
    copy = tmp_path / src.name
    shutil.copytree(src, copy)
    spec = copy / "spec.toml"
    spec.write_text(spec.read_text().replace("dt = 0.025", "dt = 0.0125"))
    reseal(copy, artefact)
    outcome = classify_load(
        "self-test",
        "forged spec",
        lambda: fingerprint(artefact, load_artefact(artefact, copy)),
        ["spec.toml"],
        base_of(artefact, src),
    )
    assert not outcome.handled and "SILENT" in outcome.reason


def test_checkpoint_edits_behind_a_forged_seal_are_still_caught(tmp_path):
    """With seal.json and manifest.json recomputed, Orbax, the shapes/dtypes and
    tree_sha256 still refuse every edit that would change what loads."""
    names = ["evidence_integration", "evidence_gain_mlp"]
    outcomes = forged_checkpoint_edits(tmp_path, 3, seed=9, names=names)
    assert len(outcomes) > 2 * 9 * 3
    assert all(o.handled for o in outcomes), summarise(outcomes)


@pytest.mark.slow
def test_many_checkpoint_edits_behind_a_forged_seal(tmp_path):
    outcomes = forged_checkpoint_edits(tmp_path, 20, seed=10)
    assert all(o.handled for o in outcomes), summarise(outcomes)
