"""Fixtures the real-CLI tier's test files share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.stubs.realcli import Sandbox


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A HOME, TMPDIR and work folder of the test's own for a CLI's runs."""
    box = Sandbox()
    yield box
    box.cleanup()
