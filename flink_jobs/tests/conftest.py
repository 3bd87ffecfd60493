"""Fixtures of the Flink SQL tests; the database fixture is shared with the PyFlink tests."""

from pyflink_jobs.tests.conftest import fresh_db  # noqa: F401  (a fixture)
