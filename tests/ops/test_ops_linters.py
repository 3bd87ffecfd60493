"""The linters: hadolint, shellcheck, yamllint, actionlint and the Compose v2 validator."""

from __future__ import annotations

import opslib
import pytest

SHELL_SCRIPTS = opslib.shell_scripts()


def test_hadolint_dockerfiles() -> None:
    """docker/Dockerfile (services) and docker/Dockerfile.pyflink (stream processors)."""
    dockerfiles = [p for p in opslib.repo_files("") if p.name.startswith("Dockerfile")
                   and not p.name.endswith(".dockerignore")]
    assert dockerfiles, "no Dockerfile found"
    result = opslib.run(opslib.tool("hadolint"), "--config", ".hadolint.yaml", *dockerfiles)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: str(p.relative_to(opslib.REPO)))
def test_shellcheck(script) -> None:
    # sourced helpers are followed relative to the script's own directory
    result = opslib.run(opslib.tool("shellcheck"), "--external-sources", "--source-path=SCRIPTDIR", script)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shell_scripts_found() -> None:
    names = {p.relative_to(opslib.REPO).as_posix() for p in SHELL_SCRIPTS}
    assert {"scripts/infra/redpanda-auth.sh", "scripts/infra/minio-init.sh", "taskw"} <= names


def test_yamllint() -> None:
    result = opslib.run(opslib.tool("yamllint"), "-c", ".yamllint.yaml", "--strict", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint() -> None:
    workflows = sorted((opslib.REPO / ".github" / "workflows").glob("*.y*ml"))
    assert workflows, "no workflow under .github/workflows"
    # actionlint runs shellcheck on every `run:` script (the venv's shellcheck is on PATH).
    result = opslib.run(opslib.tool("actionlint"), "-shellcheck", opslib.tool("shellcheck"), *workflows)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_config_is_valid() -> None:
    """`docker compose config -q`: the compose-spec schema plus the CLI's own checks
    (interpolation, extends/merge keys, depends_on targets, volume and network references), for
    the infrastructure alone and with the `services` profile."""
    for profile in ([], ["--profile", "services"]):
        result = opslib.run(opslib.tool("docker-compose"), "-f", "docker-compose.yml", *profile, "config", "-q")
        assert result.returncode == 0, (profile, result.stderr)


def test_compose_validator_rejects_an_invalid_file(tmp_path) -> None:
    """The validator is real: an unknown service key and a dangling depends_on are errors."""
    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services:\n  a:\n    image: busybox\n    depends_on: [missing]\n")
    assert opslib.run(opslib.tool("docker-compose"), "-f", bad, "config", "-q", cwd=tmp_path).returncode != 0
    bad.write_text("services:\n  a:\n    image: busybox\n    restart_policy: always\n")
    assert opslib.run(opslib.tool("docker-compose"), "-f", bad, "config", "-q", cwd=tmp_path).returncode != 0
