"""A folder for the operations tests' own PostgreSQL servers."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ops import pgcluster as pg


@pytest.fixture
def cluster_root() -> Iterator[Path]:
    pg.binaries_or_skip()
    # Outside pytest's own temporary folders, which the postgres user cannot enter.
    root = Path(tempfile.mkdtemp(prefix="yuyue-pg-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
