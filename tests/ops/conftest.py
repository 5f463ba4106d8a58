"""Fixtures for the operator tests: in-process worlds on SQLite and PostgreSQL, a shared data dir."""

from pathlib import Path

import pytest

from tests.support import Demo, init_demo


@pytest.fixture(scope="module")
def shared_demo(tmp_path_factory) -> Demo:
    """One `fristed init --demo` data dir for a module whose tests only read it or fail before writing."""
    return init_demo(Path(tmp_path_factory.mktemp("shared")) / "data")
