"""Fixtures of the PyFlink job tests. Databases come from the Supabase test library
(tests/supabase/supabase_testlib.py, importable by name: pyproject.toml puts tests/supabase on
pytest's pythonpath): a fresh sb_test_<hex> database with the whole schema applied by
scripts/supabase_apply.py, dropped afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def fresh_db() -> Iterator[str]:
    """The connection string of a new, migrated database for one test."""
    from supabase_testlib import fresh_database

    with fresh_database(seed=False) as dsn:
        yield dsn


@pytest.fixture
def ns():
    """A Kafka namespace of one test (kafka_stack.KafkaNamespace): its own topics, subjects
    and consumer groups, deleted afterwards."""
    from pyflink_jobs.tests import kafka_stack

    with kafka_stack.namespace() as namespace:
        yield namespace
