"""`embtune --help` and each command's: a line of help for every command and argument."""

import argparse

from embtune_pipeline.cli import parser


def _unhelped(ap: argparse.ArgumentParser, path: str) -> list[str]:
    missing = []
    for action in ap._actions:
        if isinstance(action, argparse._SubParsersAction):
            helped = {a.dest for a in action._choices_actions if a.help}
            for name, sub in action.choices.items():
                missing += [] if name in helped else [f"{path} {name}"]
                missing += _unhelped(sub, f"{path} {name}")
        elif not action.help:
            missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_command_and_argument_has_a_line_of_help():
    ap = parser()
    assert _unhelped(ap, "embtune") == []
    commands = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert {"run", "snapshot", "snapshots", "champion", "promote", "rollback", "label", "ui", "eval-set"} <= set(commands)
