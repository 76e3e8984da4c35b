"""The house a newcomer walks: one command under two names, every command documented, module
names that say one thing each, and a README that fits on a screen."""

import shutil
import subprocess
import sys
from collections import Counter

from collector.app import REPOSITORY
from collector.cli import build_parser


def cli_commands(parser=None, prefix=()):
    """Every command path, e.g. ("annotator", "add")."""
    import argparse

    parser = parser or build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                has_sub = any(isinstance(a, argparse._SubParsersAction) for a in sub._actions)
                if not has_sub:
                    yield prefix + (name,)
                yield from cli_commands(sub, prefix + (name,))


def test_deconfound_and_python_m_collector_list_the_same_commands():
    script = shutil.which("deconfound", path=str(REPOSITORY / ".venv" / "bin")) or shutil.which("deconfound")
    assert script, "pip install -e . installs the deconfound command"
    via_script = subprocess.run([script, "--help"], capture_output=True, text=True, check=True).stdout
    via_module = subprocess.run([sys.executable, "-m", "collector", "--help"], capture_output=True, text=True,
                                check=True).stdout
    assert via_script.startswith("usage: deconfound") and via_module.startswith("usage: python -m collector")
    assert via_script.split("\n", 1)[1] == via_module.split("\n", 1)[1]


def test_every_cli_command_is_in_the_docs():
    docs = (REPOSITORY / "docs" / "cli.md").read_text(encoding="utf-8")
    missing = [" ".join(path) for path in cli_commands() if f"`python -m collector {' '.join(path)}" not in docs]
    assert missing == []


def test_no_two_modules_share_a_name():
    names = Counter(p.stem for package in ("acquisition", "models", "collector")
                    for p in (REPOSITORY / package).rglob("*.py") if p.stem != "__init__")
    assert [name for name, n in names.items() if n > 1] == []


def test_the_readme_fits_on_a_screen_and_points_to_every_docs_page():
    readme = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    for page in (REPOSITORY / "docs").glob("*.md"):
        assert f"docs/{page.name}" in readme, page.name
