"""docker/Dockerfile: one target per service, each built with --release --bin <service>."""

from __future__ import annotations

import re
import tomllib

import opslib

DOCKERFILE = opslib.REPO / "docker" / "Dockerfile"
SERVICES = ("api-gateway", "message-consumer", "media-service")


def stages() -> dict[str, str]:
    text = DOCKERFILE.read_text()
    parts = re.split(r"^FROM\s+", text, flags=re.M)[1:]
    result = {}
    for part in parts:
        header, _, body = part.partition("\n")
        match = re.search(r"\bAS\s+(\S+)", header, re.I)
        assert match, f"unnamed stage: FROM {header}"
        result[match.group(1)] = header + "\n" + body
    return result


def test_one_target_per_service() -> None:
    all_stages = stages()
    for service in SERVICES:
        assert (opslib.REPO / "crates" / service / "Cargo.toml").is_file()
        package = tomllib.loads((opslib.REPO / "crates" / service / "Cargo.toml").read_text())["package"]
        assert package["name"] == service
        build = all_stages[f"build-{service}"]
        assert f"cargo build --release --locked --bin {service}" in build
        target = all_stages[service]
        assert target.startswith("runtime"), "service targets derive from the runtime stage"
        assert f"COPY --chown=root:root crates/{service}/config/ /app/config/" in target
        assert f'ENTRYPOINT ["/app/{service}"]' in target
    # the gateway's default allowlist travels in its config directory (/app/config/routes.yaml)
    assert (opslib.REPO / "crates/api-gateway/config/routes.yaml").is_file()


def test_runtime_is_distroless_non_root_with_production_config() -> None:
    runtime = stages()["runtime"]
    assert runtime.startswith("gcr.io/distroless/cc-debian12")
    assert re.search(r"^USER 65532:65532$", runtime, re.M), "numeric non-root user (runAsNonRoot)"
    assert "APP_CONFIG_DIR=/app/config" in runtime and "APP_ENVIRONMENT=production" in runtime
    for service in SERVICES:
        assert (opslib.REPO / "crates" / service / "config" / "production.yaml").is_file()


def test_dependencies_are_cooked_before_the_sources_are_copied() -> None:
    all_stages = stages()
    assert "cargo chef prepare" in all_stages["planner"]
    cook = all_stages["cook"]
    assert "COPY . ." not in cook and "cargo chef cook --release" in cook


def test_dockerignore_keeps_the_context_small() -> None:
    lines = (opslib.REPO / ".dockerignore").read_text().split()
    assert "**" in lines, "everything is excluded unless re-included"
    for needed in ("!Cargo.toml", "!Cargo.lock", "!crates/**"):
        assert needed in lines
    assert "**/target" in lines
