"""What tests in several folders share. Imported as `support` (pytest puts tests/ on sys.path);
not from `conftest`, a name that every conftest.py in the tree claims in sys.modules."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"


def shared_dataset(name: str) -> Path:
    """A dataset from ../shared/datasets, or a clean skip when this checkout has none."""
    path = SHARED_DATASETS / name
    if not path.exists():
        pytest.skip(f"{path} is not present")
    return path
