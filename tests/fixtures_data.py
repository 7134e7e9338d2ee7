"""Shared fixtures of the data tests: the real data files beside the clone, and row builders.

Import the fixture into a test module with ``from tests.fixtures_data import shared_data``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

#: ``../shared/data`` beside the repository (CI puts ``shared/`` there).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real data files; a missing folder fails the test (it is not optional)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the shared data folder is missing: {SHARED_DATA}")
    return SHARED_DATA


def make_row(query: str = "What is 2+2?", response: str = "4", *, data_source: str = "unit",
             **label: Any) -> dict[str, Any]:
    """A valid record dict (label ``helpfulness=3`` unless labels are given)."""
    return {
        "input": [{"role": "user", "content": query}],
        "output": {"content": response, "label": label or {"helpfulness": 3}},
        "data_source": data_source,
    }
