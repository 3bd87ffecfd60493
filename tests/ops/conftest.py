"""Fixtures of the deployment checks (tests/ops): the rendered chart and compose model, shared
by the tests of one session so each is produced once."""

from __future__ import annotations

import json
from typing import Any

import opslib
import pytest


@pytest.fixture(scope="session", params=sorted(opslib.VALUES_FILES))
def values_name(request: pytest.FixtureRequest) -> str:
    """Name of a values set: `default` (values.yaml) or `production` (values-production.yaml)."""
    return request.param


_RENDERED: dict[str, list[dict[str, Any]]] = {}


@pytest.fixture(scope="session")
def rendered(values_name: str) -> list[dict[str, Any]]:
    """Every manifest the chart renders with the values set, as parsed documents."""
    if values_name not in _RENDERED:
        _RENDERED[values_name] = opslib.manifests(
            opslib.render_chart(opslib.load_values(values_name))
        )
    return _RENDERED[values_name]


@pytest.fixture(scope="session")
def compose_model() -> dict[str, Any]:
    """docker-compose.yml as the Compose CLI resolves it (interpolated, merged, normalised),
    with the `services` profile, so the three services are part of the model."""
    result = opslib.run(
        opslib.tool("docker-compose"), "-f", "docker-compose.yml", "--profile", "services",
        "config", "--format", "json",
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    """Print the reports the tests collected (validated kinds, skipped kinds, metric coverage)."""
    for title, lines in opslib.REPORT.items():
        terminalreporter.section(title)
        for line in lines:
            terminalreporter.write_line(line)
