"""The effects export (one row per shown response, with each attribute's marginal propensity)
and the DoWhy / EconML recipe that reads it."""

import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from acquisition.core.config import to_dict
from acquisition.design import DesignScores, design_points
from acquisition.effects import amce
from acquisition.policies import AnnotatorContext, RandomisedAttributesConfig, build_policy
from acquisition.policies.active import ActiveConfig
from collector.app import REPOSITORY
from collector.io.export import export
from collector.io.frames import effects_frame, pairs_frame
from collector.jobs.simulate import SimulatedAnnotatorConfig, simulate
from collector.store import Store
from collector.store.create import init_db

RECIPE = REPOSITORY / "docs" / "recipes" / "dowhy_econml.py"


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    folder = tmp_path_factory.mktemp("effects")
    init_db(folder / "s.db", demo=True)
    store = Store(folder / "s.db")
    simulate(store, labels=3000, annotators=6, seed=11,
             config=SimulatedAnnotatorConfig(attribute_effects={"bold": 1.0, "emoji": -0.5}))
    yield store, folder
    store.close()


def test_one_row_per_shown_response_with_flags_and_marginal_propensities(collection):
    store, _ = collection
    pairs = pairs_frame(store)
    rows = effects_frame(pairs)
    labelled = pairs[pairs.label.isin(["left", "right", "tie"])]
    assert len(rows) == 2 * len(labelled) and Counter(rows.served_pair_id.value_counts()) == {2: len(labelled)}
    assert (rows.groupby("served_pair_id").chosen.sum() == 1.0).all()  # one side chosen, or half each
    assert "propensity_score" not in rows.columns and rows.pair_propensity.max() < 0.01  # the joint, renamed
    config = RandomisedAttributesConfig()
    for a in config.attributes:
        assert rows[f"{a}_assigned"].notna().all()  # every draw is kept, for intention to treat
        applies = rows[a].notna()  # the treatment received, where the attribute applies
        assert 0.1 < applies.mean() and (rows.loc[applies, f"{a}_propensity"] == config.p(a)).all()
        assert rows.loc[~applies, f"{a}_propensity"].isna().all()
        left = rows[rows.side == "left"].set_index("served_pair_id")[a]
        both = labelled.set_index("served_pair_id")[[f"left_{a}", f"right_{a}"]].reindex(left.index)
        expected = both[f"left_{a}"].where(both.notna().all(axis=1))  # rows of the AMCE's pairs
        assert (left.isna() == expected.isna()).all() and (left.dropna() == expected.dropna().astype(bool)).all()


def test_an_unequal_design_records_its_own_marginals(tmp_path):
    init_db(tmp_path / "u.db", demo=True)
    store = Store(tmp_path / "u.db")
    store.activate_policy("randomised_attributes", to_dict(RandomisedAttributesConfig(
        attributes=["emoji", "bold"], probabilities={"emoji": 0.2})))
    simulate(store, labels=200, annotators=2, seed=2)
    rows = effects_frame(pairs_frame(store))
    assert set(rows.emoji_propensity.dropna()) == {0.2} and set(rows.bold_propensity.dropna()) == {0.5}
    assert rows.hedging.isna().all() and rows.hedging_propensity.isna().all()  # not randomised: null
    assert abs(rows.emoji_assigned.mean() - 0.2) < 0.06  # and the draws follow it
    store.close()


def test_marginals_of_the_adaptive_policies_are_the_frequencies_they_draw_with(tmp_path):
    """Active with design-space weights and overlap targeting draw edits non-uniformly; the
    marginal each records must be the probability it actually draws each attribute with."""
    init_db(tmp_path / "m.db", demo=True)
    store = Store(tmp_path / "m.db")
    pool = store.pool_snapshot(lazy_texts=True)
    names = ["bold", "emoji", "hedging"]
    n_pairs = len(design_points(names)) * (len(design_points(names)) - 1) // 2
    scores = DesignScores(names, np.linspace(0.0, 3.0, n_pairs), "eubo")
    policies = [build_policy("active", to_dict(ActiveConfig(attributes=names, uniform_share=0.3)), pool,
                             design_scores=scores),
                build_policy("overlap_targeting", {"attributes": names}, pool)]
    rng = np.random.default_rng(0)
    for policy in policies:
        draws = [policy.propose(AnnotatorContext(1, "default"), rng) for _ in range(6000)]
        marginals = draws[0].edit_marginals
        assert set(marginals) == set(names)
        for a in names:
            seen = np.mean([[p.left.edit_vector[a]["on"], p.right.edit_vector[a]["on"]] for p in draws])
            assert abs(seen - marginals[a]) < 0.015, (policy.name, a, seen, marginals[a])
        if policy.name == "active":
            assert max(marginals.values()) - min(marginals.values()) > 0.03  # not all one half
    store.close()


def causal_python() -> str:
    """DoWhy and EconML's environment: ``DECONFOUND_CAUSAL_PYTHON`` (``make test`` sets it), else
    the repository's ``.venv-causal``; missing, the test fails and says how to make it."""
    python = os.environ.get("DECONFOUND_CAUSAL_PYTHON") or str(REPOSITORY / ".venv-causal" / "bin" / "python")
    assert Path(python).exists(), (f"{python} does not exist: `make test` creates .venv-causal "
                                   "(DoWhy 0.14 and EconML 0.17 pin an older SciPy than the app's)")
    return python


@pytest.mark.parametrize("ext", ["parquet", "jsonl"])
def test_dowhy_and_econml_recover_the_amce_from_the_effects_export(collection, ext):
    store, folder = collection
    out = folder / f"effects.{ext}"
    export(store, "effects", out)
    done = subprocess.run([causal_python(), str(RECIPE), str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    table = amce(pairs_frame(store)).set_index("attribute")
    assert set(found) == set(table.index)
    for attribute, row in table.iterrows():
        assert abs(found[attribute]["dowhy"] - row.estimate) < 0.01, (attribute, found[attribute], row.estimate)
        assert abs(found[attribute]["econml"] - row.estimate) < 0.01, (attribute, found[attribute], row.estimate)
    assert table.loc["bold", "ci_low"] > 0 and found["bold"]["econml_ci"][0] > 0  # the true effect shows in both


def test_the_effects_export_loads_in_pandas_with_typed_columns(collection):
    store, folder = collection
    export(store, "effects", folder / "typed.parquet")
    df = pd.read_parquet(folder / "typed.parquet", dtype_backend="numpy_nullable")
    # a flag is a nullable boolean: null where the attribute does not apply to the response
    assert str(df.chosen.dtype) == "Float64" and str(df.bold.dtype) == "boolean" and str(df.bold_assigned.dtype) == "boolean"
    assert str(df.bold_propensity.dtype) == "Float64"


def test_the_recipe_and_effects_json_agree_under_an_unequal_design(tmp_path, capsys):
    """verbosity drawn with p = 0.3, the others 0.5: the dashboard's estimand (the study's own
    design) is the one the DoWhy/EconML recipe estimates; the uniform reweighting is a different
    estimand and is named as such."""
    from collector.cli import main

    init_db(tmp_path / "u.db", demo=True)
    store = Store(tmp_path / "u.db")
    store.activate_policy("randomised_attributes", {"attributes": ["list_format", "bold", "verbosity"],
                                                    "probabilities": {"verbosity": 0.3}})
    simulate(store, labels=2500, annotators=5, seed=4,
             config=SimulatedAnnotatorConfig(attribute_effects={"list_format": 0.8, "verbosity": 0.6, "bold": 0.3}))
    export(store, "effects", tmp_path / "u.parquet")
    store.close()
    assert main(["effects", "--db", str(tmp_path / "u.db"), "--json"]) == 0
    ours = {r["attribute"]: r for r in json.loads(capsys.readouterr().out)["effects"]}
    assert {r["estimand"] for r in ours.values()} == {"design"}
    done = subprocess.run([causal_python(), str(RECIPE), str(tmp_path / "u.parquet")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(found) == set(ours) == {"list_format", "bold", "verbosity"}
    for attribute, row in ours.items():
        assert abs(found[attribute]["dowhy"] - row["estimate"]) < 0.005, (attribute, found[attribute], row)
        assert abs(found[attribute]["econml"] - row["estimate"]) < 0.005, (attribute, found[attribute], row)
    assert main(["effects", "--db", str(tmp_path / "u.db"), "--json", "--estimand", "uniform"]) == 0
    uniform = json.loads(capsys.readouterr().out)
    assert uniform["estimand"] == "uniform" and "uniform design" in uniform["description"]
