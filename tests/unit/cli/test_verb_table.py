"""`awooop <verb>` builds its parser from the modules `VERBS` names for that verb: the
table says exactly which modules register each verb, a verb's parser built alone is
the one the whole parser holds, and every handler a parser names can be found.

Break caught: a verb added, moved or joined by another module without the table
following (that verb would lose sub-commands or be missing), a `DeferredHandler`
naming a function that does not exist, and a refusal in `_EXPECTED` that names no
class (its message would come out with a type name and a hint about `--traceback`).
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

import pytest

from awooop.cli import main as cli
from awooop.cli.verbs.deferred import DeferredHandler

pytestmark = pytest.mark.unit


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for sub in _subcommands(parser).values():
        found += _parsers(sub)
    return found


def _described(parser: argparse.ArgumentParser, path: str = "") -> dict[str, Any]:
    """Everything a person or a handler meets of `parser` and its sub-commands: the help
    of each, and the defaults each sets (the handler among them)."""
    found: dict[str, Any] = {
        path: (parser.format_help(), {k: repr(v) for k, v in parser._defaults.items()})
    }
    for name, sub in _subcommands(parser).items():
        found |= _described(sub, f"{path} {name}".strip())
    return found


def _owners_by_registering() -> tuple[list[str], dict[str, tuple[str, ...]]]:
    """Every verb in `--help` order, and the modules whose `register` added or changed
    each, found by registering `REGISTRARS` one at a time."""
    parser = argparse.ArgumentParser(prog="awooop")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    owners: dict[str, list[str]] = {}
    for module in cli.REGISTRARS:
        before = {verb: _described(sub) for verb, sub in verbs.choices.items()}
        importlib.import_module(module).register(verbs)
        for verb, sub in verbs.choices.items():
            if before.get(verb) != _described(sub):
                owners.setdefault(verb, []).append(module)
    return list(verbs.choices), {verb: tuple(modules) for verb, modules in owners.items()}


def test_the_table_names_every_verb_and_each_module_that_registers_it() -> None:
    order, owners = _owners_by_registering()
    assert owners == cli.VERBS
    assert list(cli.VERBS) == order  # the table reads as `awooop --help` lists
    assert owners["runs"] == ("awooop.cli.verbs.queries", "awooop.cli.verbs.runtime_commands")
    assert owners["budget"] == (
        "awooop.cli.verbs.runtime_commands",
        "awooop.cli.verbs.budget_queries",
    )


def test_every_module_of_the_table_registers_in_whole_parser_order() -> None:
    assert set(cli.REGISTRARS) == {m for modules in cli.VERBS.values() for m in modules}
    for verb, modules in cli.VERBS.items():
        places = [cli.REGISTRARS.index(m) for m in modules]
        assert places == sorted(places), verb


@pytest.mark.parametrize("verb", list(cli.VERBS))
def test_a_verb_built_alone_is_the_verb_of_the_whole_parser(verb: str) -> None:
    whole = _subcommands(cli.build_parser())[verb]
    alone = _subcommands(cli.build_parser(verb))[verb]
    assert _described(alone) == _described(whole)


def test_every_command_has_a_handler_that_is_found() -> None:
    leaves = [p for p in _parsers(cli.build_parser()) if not _subcommands(p)]
    assert len(leaves) >= 40
    deferred = 0
    for leaf in leaves:
        handler = leaf._defaults.get("handler")
        assert handler is not None, leaf.prog
        if isinstance(handler, DeferredHandler):
            deferred += 1
            handler = handler.resolve()
        assert callable(handler), leaf.prog
    assert deferred >= 20


@pytest.mark.parametrize(
    ("argv", "verb"),
    [
        (["runs", "list", "--limit", "3"], "runs"),
        (["--traceback", "budget", "show"], "budget"),
        (["mcp-calls", "--help"], "mcp-calls"),
        (["--help"], None),
        (["-h", "runs"], None),
        (["--trace", "runs", "list"], None),  # an abbreviation: the whole parser decides
        (["bogus"], None),
        (["--traceback"], None),
        ([], None),
    ],
)
def test_the_verb_is_the_first_argument_after_traceback(argv: list[str], verb: str | None) -> None:
    assert cli.chosen_verb(argv) == verb


def test_a_verb_parser_built_alone_still_refuses_what_the_whole_one_refuses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as usage:
        cli.main(["runs", "lst"])
    assert usage.value.code == 2
    assert "invalid choice: 'lst' (choose from 'list', 'show', 'cancel')" in capsys.readouterr().err


@pytest.mark.parametrize("name", cli._EXPECTED)
def test_each_expected_refusal_names_the_class_where_it_is_defined(name: str) -> None:
    module_name, _, class_name = name.partition(":")
    refusal = getattr(importlib.import_module(module_name), class_name)
    assert issubclass(refusal, Exception)
    assert refusal.__module__ == module_name
    assert cli.describe(refusal("the whole\n story")) == "the whole story"


def test_an_unexpected_error_is_named_with_a_hint() -> None:
    line = cli.describe(KeyError("x"))
    assert line == "KeyError: 'x' (rerun with --traceback for the trace)"
