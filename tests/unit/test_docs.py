"""Docs under test: a setting or command that is not documented fails here."""

from pathlib import Path

from gateway.settings import DEFAULTS
from ops.cli import COMMANDS, build_parser
from ops.commands.init import CONFIG_TEMPLATE

ROOT = Path(__file__).resolve().parents[2]


def setting_names(tree: dict, prefix: str = "") -> list[str]:
    names = []
    for key, value in tree.items():
        if isinstance(value, dict):
            names += setting_names(value, f"{prefix}{key}.")
        else:
            names.append(f"{prefix}{key}")
    return names


def test_every_setting_is_in_the_readme_table_and_the_config_template():
    readme = (ROOT / "README.md").read_text()
    for name in setting_names(DEFAULTS):
        leaf = name.rsplit(".", 1)[-1]
        assert f"`{name}`" in readme or f"`{name.split('.')[0]}.{leaf}`" in readme, f"{name} missing from README.md"
        assert f"\n{leaf} = " in CONFIG_TEMPLATE, f"{name} missing from the fristed.toml template"


def test_every_command_is_registered_and_documented_for_operators():
    parser = build_parser()
    registered = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert set(COMMANDS) <= registered
    guide = (ROOT / "docs" / "operators.md").read_text()
    for name in COMMANDS:
        assert f"fristed {name}" in guide, f"`fristed {name}` missing from docs/operators.md"


def test_the_readme_names_exactly_two_setup_commands_and_ci_runs_the_second():
    readme = (ROOT / "README.md").read_text()
    assert "ops/demo.sh" in readme and "ops/test.sh" in readme
    assert "exec ops/test.sh" in (ROOT / ".ci" / "run").read_text()
