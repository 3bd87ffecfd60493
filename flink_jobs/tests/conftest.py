"""Fixtures of the Flink SQL tests; the database and Kafka namespace fixtures are shared with
the PyFlink tests."""

from pyflink_jobs.tests.conftest import fresh_db, ns  # noqa: F401  (fixtures)
