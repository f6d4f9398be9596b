"""python -m data | scoring | ranking: one module per command (service/cli/), each in one program, every one listed by
--help and its parser built; the shims run the same programs."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import service.cli
from scoring import registry
from scoring.__main__ import main
from service.cli.programs import DATA, RANKING, SCORING

ROOT = Path(__file__).resolve().parents[3]
SUBCOMMANDS = ("score", "llc-sweep", "work", "personal", "personal-study", "dropout-study", "stage", "study",
               "intertrain", "regate")
COMMANDS = SCORING.commands
build_parser = SCORING.parser
SHARED = {"args", "common", "programs"}  # what the commands share, and the assembly


def test_help_lists_every_subcommand_in_order(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "{" + ",".join(SUBCOMMANDS) + "}" in out
    assert all(f"\n    {name}" in out for name in SUBCOMMANDS)


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_parser_builds(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: python -m scoring {name} ")


def test_every_cli_module_is_a_command_of_exactly_one_program():
    modules = {m.name for m in pkgutil.iter_modules(service.cli.__path__)} - SHARED
    owned = [c.__name__.rpartition(".")[2] for program in (DATA, SCORING, RANKING) for c in program.commands]
    assert sorted(owned) == sorted(modules)


@pytest.mark.parametrize(("shim", "program"), [("data", DATA), ("scoring", SCORING), ("ranking", RANKING)])
def test_each_shim_runs_its_program_and_lists_every_command(shim, program, capsys):
    import importlib

    with pytest.raises(SystemExit) as exit_:
        importlib.import_module(f"{shim}.__main__").main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    names = [action.dest for action in program.parser()._subparsers._group_actions[0]._choices_actions]
    assert out.startswith(f"usage: python -m {shim} ") and len(names) == len(program.commands)
    for name in names:
        with pytest.raises(SystemExit) as exit_:
            program.main([name, "--help"])
        assert exit_.value.code == 0 and capsys.readouterr().out.startswith(f"usage: python -m {shim} {name} ")


def test_every_scoring_module_runs_its_own_command():
    parser = build_parser()
    required = {"score": ["m"], "llc-sweep": ["m", "--base", "b"], "dropout-study": ["m"],
                "stage": ["probe", "--base", "b"], "intertrain": ["b", "--source", "s", "--out", "o"],
                "personal": ["--base", "b", "--data", "d.csv"], "personal-study": ["--study-dir", "s"],
                "regate": ["snap.json"]}
    for command, name in zip(COMMANDS, SUBCOMMANDS, strict=True):
        args = parser.parse_args([name, *required.get(name, [])])
        assert args.func is command.run, name


def test_stage_scorers_come_from_the_registry():
    assert registry.prefilter() == "linear_probe" and registry.is_prefilter(registry.prefilter())
    assert registry.gain_scorer() == "intertraining" and not registry.is_prefilter(registry.gain_scorer())


@pytest.mark.parametrize("shim", ["data", "scoring", "ranking"])
def test_help_imports_no_torch(shim):
    code = (f"import sys\nfrom {shim}.__main__ import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"assert 'torch' not in sys.modules, 'python -m {shim} --help imported torch'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", ["score", "stage"])
def test_lrs_reach_the_intertraining_config(name):
    from data.settings import Settings
    from service.cli.common import make_scorer

    base = ["m"] if name == "score" else ["full", "--base", "b"]
    parser = build_parser()
    swept = make_scorer("intertraining", parser.parse_args([name, *base, "--lrs", "1e-4,3e-4"]), Settings())
    assert swept.cfg.lrs == (1e-4, 3e-4)
    assert make_scorer("intertraining", parser.parse_args([name, *base]), Settings()).cfg.lrs == ()


@pytest.mark.parametrize(("text", "says"), [("1e-4,abc", "not a comma-separated list"),
                                            ("3e-4,3e-4", "distinct"), ("0,1e-4", "between 0 and 1")])
def test_a_bad_lrs_list_is_refused_in_one_sentence(text, says, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["score", "m", "--lrs", text])
    assert exit_.value.code == 2 and says in capsys.readouterr().err


def test_regate_of_the_bundled_snapshot_changes_nothing_and_keeps_its_bytes(tmp_path, capsys):
    """The bundled snapshot was gated by today's gate: re-gating it is a no-op, byte for byte."""
    from data.settings import DEFAULT_SNAPSHOT

    copy = tmp_path / "study.json"
    copy.write_bytes(DEFAULT_SNAPSHOT.read_bytes())
    assert main(["regate", str(copy)]) == 0
    assert capsys.readouterr().out.strip() == "0 free-energy scores re-gated"
    assert copy.read_bytes() == DEFAULT_SNAPSHOT.read_bytes()
