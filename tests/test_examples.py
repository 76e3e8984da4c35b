from pathlib import Path

import pytest

from acquisition.policies import POLICIES, load_policy_file

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "acquisition" / "examples").glob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_policy_files_validate(path):
    name, _config = load_policy_file(str(path))
    assert name == path.stem


def test_every_policy_has_an_example():
    assert {p.stem for p in EXAMPLES} == set(POLICIES)
