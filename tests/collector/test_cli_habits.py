"""CLI habits: every option says what it does, every command that prints a result can print it
as JSON, and the long jobs report progress."""

import argparse
import json

import pytest

from collector.cli import build_parser, main
from collector.store.create import init_db

NO_JSON = {("benchmark", "causal")}  # writes its report files; prints where they are


def _commands(parser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*prefix, name))
    if prefix:
        yield prefix, parser


def test_every_option_has_help_text():
    missing = [f"{' '.join(name)} {a.option_strings or a.dest}" for name, p in _commands(build_parser())
               for a in p._actions if not a.help and not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]
    assert not missing, missing


def test_every_command_that_prints_a_result_takes_json():
    lacking = [" ".join(name) for name, p in _commands(build_parser())
               if p.get_default("handler") is not None and name not in NO_JSON
               and "--json" not in {o for a in p._actions for o in a.option_strings}]
    assert not lacking, lacking


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "c.db"
    init_db(path, demo=True)
    assert main(["simulate", "--db", str(path), "--labels", "30"]) == 0
    return path


@pytest.mark.parametrize("command", [
    ["status"], ["annotator", "list"], ["policy", "list"], ["policy", "show"], ["effects"], ["effects", "--by", "group"],
    ["balance"], ["audit"], ["gold", "list"], ["qc", "show"], ["qc", "report"], ["study", "show"], ["researcher", "list"],
])
def test_json_output_parses(db, capsys, command):
    capsys.readouterr()
    assert main([*command, "--db", str(db), "--json"]) == 0
    json.loads(capsys.readouterr().out)


def test_the_editors_list_and_an_export_print_json(db, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DECONFOUND_PROGRESS", "1")  # as on a terminal
    capsys.readouterr()
    assert main(["editors", "list", "--json"]) == 0
    assert {"name", "kind", "description"} <= set(json.loads(capsys.readouterr().out)[0])
    assert main(["export", "--db", str(db), "--format", "trl", "--out", str(tmp_path / "t.jsonl"), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["rows"] > 0 and "export: reading" in captured.err


def test_simulate_reports_progress(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DECONFOUND_PROGRESS", "1")  # as on a terminal
    init_db(tmp_path / "s.db", demo=True)
    capsys.readouterr()
    assert main(["simulate", "--db", str(tmp_path / "s.db"), "--labels", "12"]) == 0
    assert "simulate: 12/12 labels (100%)" in capsys.readouterr().err


def test_every_command_prints_its_help(capsys):
    """A help text is %-formatted by argparse: a stray % breaks --help."""
    for name, parser in _commands(build_parser()):
        parser.format_help()
    build_parser().format_help()


def test_an_import_whose_file_name_is_not_utf8_works_and_is_reported_escaped(tmp_path, capsys):
    import os

    name = os.fsdecode(b"pr\xe9f\xe9rences.jsonl")  # Latin-1 bytes: valid for the OS, not UTF-8
    path = os.path.join(str(tmp_path), name)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps({"prompt": "q?", "chosen": "yes", "rejected": "no"}) + "\n")
    init_db(tmp_path / "d.db")
    capsys.readouterr()
    assert main(["import", path, "--db", str(tmp_path / "d.db"), "--no-embed"]) == 0
    assert "pr\\udce9f\\udce9rences.jsonl" in capsys.readouterr().out
