"""Every example policy file validates, and every registered policy has one."""

import pytest

from acquisition import EXAMPLES
from acquisition.policies import POLICIES, load_policy_file

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_policy_files_validate(path):
    name, _config = load_policy_file(str(path))
    assert name == path.stem


def test_every_policy_has_an_example():
    assert {p.stem for p in EXAMPLE_FILES} == set(POLICIES)
