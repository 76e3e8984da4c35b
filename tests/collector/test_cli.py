import argparse
import json

import pandas as pd
import pytest

from collector.cli import build_parser, main


def _subparsers(parser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield prefix + (name,), sub
                yield from _subparsers(sub, prefix + (name,))


COMMANDS = [path for path, _ in _subparsers(build_parser())]


def test_every_command_is_listed():
    assert {("init",), ("annotator", "add"), ("simulate",), ("export",), ("policy", "apply"),
            ("policy", "show"), ("status",)} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_help(path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*path, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "usage:" in out and len(out.splitlines()) > 3
    sub = dict(_subparsers(build_parser()))[path]
    assert sub.description


def test_init_simulate_export_round_trip(tmp_path, capsys):
    db = str(tmp_path / "x.db")
    assert main(["init", "--demo", "--db", db]) == 0
    assert json.loads(capsys.readouterr().out)["policy"] == "randomised_attributes"
    assert main(["annotator", "add", "Ada", "--group", "experts", "--covariate", "lang=en", "--db", db]) == 0
    assert "?token=" in capsys.readouterr().out
    assert main(["simulate", "--labels", "50", "--db", db]) == 0
    assert json.loads(capsys.readouterr().out)["labels"] == 50
    out = tmp_path / "x.jsonl"
    assert main(["export", "--format", "trl", "--out", str(out), "--db", db]) == 0
    df = pd.read_json(out, lines=True)
    assert 40 <= len(df) <= 50 and (df["policy"] == "randomised_attributes").all()


def test_policy_apply_and_errors(tmp_path, capsys):
    db = str(tmp_path / "x.db")
    main(["init", "--demo", "--db", db])
    good = tmp_path / "p.toml"
    good.write_text('name = "observational"\n')
    assert main(["policy", "apply", str(good), "--db", db]) == 0
    assert "observational version 2" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "randomised_attributes"\n[config]\nprobability = 2.0\n')
    assert main(["policy", "apply", str(bad), "--db", db]) == 1
    err = capsys.readouterr().err
    assert "bad.toml.config.probability" in err and "between 0 and 1" in err


def test_simulate_without_known_quality_explains(tmp_path, capsys):
    from collector.store import Store
    db = tmp_path / "x.db"
    s = Store(db)
    s.add_pool([{"prompt": "Q?", "responses": [{"text": "a."}, {"text": "b."}]}], "t")
    s.close()
    main(["init", "--db", str(db)])
    assert main(["simulate", "--labels", "1", "--db", str(db)]) == 1
    assert "known quality" in capsys.readouterr().err


def test_login_url_uses_the_address_the_app_runs_at(tmp_path, capsys, monkeypatch):
    from collector.store import Store

    db = str(tmp_path / "x.db")
    main(["init", "--db", db])
    capsys.readouterr()
    monkeypatch.delenv("DECONFOUND_BASE_URL", raising=False)
    assert main(["annotator", "add", "Ada", "--db", db]) == 0
    out, err = capsys.readouterr()
    assert "http://localhost:8501/?token=" in out and "guess" in err  # said, not silently wrong
    s = Store(db)
    s.set_meta("server_url", "http://127.0.0.1:8600/")  # what the app records when it starts
    s.close()
    assert main(["annotator", "add", "Bo", "--db", db]) == 0
    out, err = capsys.readouterr()
    assert "Login URL: http://127.0.0.1:8600/?token=" in out and err == ""
    monkeypatch.setenv("DECONFOUND_BASE_URL", "https://label.example.org/study")
    assert main(["annotator", "add", "Cy", "--db", db]) == 0
    assert "Login URL: https://label.example.org/study/?token=" in capsys.readouterr().out
