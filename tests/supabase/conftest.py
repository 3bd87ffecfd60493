"""Fixtures for the Supabase schema tests; helpers live in supabase_testlib."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from supabase_testlib import fresh_database


@pytest.fixture
def db() -> Iterator[str]:
    """A database of its own for one test."""
    with fresh_database() as dsn:
        yield dsn


@pytest.fixture(scope="module")
def module_db() -> Iterator[str]:
    """A database shared by the tests of one module."""
    with fresh_database() as dsn:
        yield dsn
