"""docker-compose.yml and the bootstrap scripts agree with each other and with the services."""

from __future__ import annotations

import re
from typing import Any

import opslib

RUST_SERVICES = {"api-gateway": 8080, "media-service": 8090, "message-consumer": 8091}
INFRA = opslib.REPO / "scripts" / "infra"


def env(model: dict[str, Any], service: str) -> dict[str, str]:
    return model["services"][service].get("environment") or {}


def test_stack_has_every_component(compose_model: dict[str, Any]) -> None:
    expected = {
        "redpanda", "redpanda-auth-init", "redpanda-topics-init", "schema-registry", "minio",
        "minio-init", "nessie", "clickhouse", "otel-collector", "prometheus", "loki", "promtail",
        "jaeger", "grafana", "postgres-exporter", "blackbox-exporter", *RUST_SERVICES,
    }
    assert expected <= set(compose_model["services"])
    assert compose_model["networks"]["default"]["name"] == "event-substrate-network"
    # brokers and objects survive a container re-creation (the original lost them)
    volumes = {v["source"] for v in compose_model["services"]["redpanda"]["volumes"]}
    assert "redpanda_data" in volumes
    assert "minio_data" in {v["source"] for v in compose_model["services"]["minio"]["volumes"]}


def test_rust_services_build_from_the_dockerfile(compose_model: dict[str, Any]) -> None:
    for name, port in RUST_SERVICES.items():
        service = compose_model["services"][name]
        assert service["build"]["dockerfile"] == "docker/Dockerfile"
        assert service["build"]["target"] == name
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        assert [p["target"] for p in service["ports"]] == [port]
        variables = env(compose_model, name)
        assert variables["REDPANDA_BROKERS"] == "redpanda:29092"
        assert variables["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-256"
        assert variables["KAFKA_SASL_USERNAME"] == name
        assert variables["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4317"


def test_sasl_users_and_passwords_are_one_set(compose_model: dict[str, Any]) -> None:
    script = (INFRA / "redpanda-auth.sh").read_text()
    users = dict(re.findall(r'\[([a-z-]+)\]="\$\{([A-Z_]+):-', script))
    assert {"superuser", "api-gateway", "message-consumer", "media-service", "flink-processor",
            "schema-admin", "clickhouse-consumer", "keda-scaler"} == set(users)
    init_env = env(compose_model, "redpanda-auth-init")
    for service in RUST_SERVICES:
        assert init_env[users[service]] == env(compose_model, service)["KAFKA_SASL_PASSWORD"], service
        # every service user has ACLs
        acls = (INFRA / "kafka-acls.txt").read_text()
        assert re.search(rf"^{service} ", acls, re.M), service
    assert init_env["CLICKHOUSE_CONSUMER_PASSWORD"] == env(compose_model, "clickhouse")["CLICKHOUSE_KAFKA_PASSWORD"]
    jaas = env(compose_model, "schema-registry")["SCHEMA_REGISTRY_KAFKASTORE_SASL_JAAS_CONFIG"]
    assert f'password="{init_env["SCHEMA_ADMIN_PASSWORD"]}"' in jaas
    assert init_env["MESSAGE_CONSUMER_GROUP"] == env(compose_model, "message-consumer")["APP__CONSUMER__GROUP_ID"]
    assert not (opslib.REPO / "scripts" / "setup-redpanda-auth.sh").exists(), "one ACL script only"


def test_minio_webhooks_carry_the_media_service_token(compose_model: dict[str, Any]) -> None:
    minio = env(compose_model, "minio")
    token = env(compose_model, "media-service")["APP__WEBHOOK__TOKEN"]
    assert token
    for target, path in (("UPLOADS", "/webhooks/media-upload"), ("FILES", "/webhooks/file-ready")):
        assert minio[f"MINIO_NOTIFY_WEBHOOK_ENABLE_MEDIASERVICE_{target}"] == "on"
        assert minio[f"MINIO_NOTIFY_WEBHOOK_ENDPOINT_MEDIASERVICE_{target}"] == f"http://media-service:8090{path}"
        assert minio[f"MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_MEDIASERVICE_{target}"] == token
    script = (INFRA / "minio-init.sh").read_text()
    assert "arn:minio:sqs::MEDIASERVICE_UPLOADS:webhook --event put --prefix uploads/" in script
    assert "arn:minio:sqs::MEDIASERVICE_FILES:webhook --event put --prefix files/" in script


def test_media_bucket_is_private_and_staging_expires() -> None:
    script = (INFRA / "minio-init.sh").read_text()
    commands = [line.strip() for line in script.splitlines() if line.strip().startswith("mc ")]
    anonymous = [c for c in commands if c.startswith("mc anonymous")]
    assert anonymous == ['mc anonymous set none "local/$bucket" >/dev/null']
    assert not re.search(r"anonymous\s+set\s+(download|public|upload)", script)
    assert any("ilm rule add --prefix uploads/ --expire-days 1" in c for c in commands)


def test_topics_script_covers_every_schema() -> None:
    script = (INFRA / "redpanda-topics.sh").read_text()
    assert "redpanda.iceberg.mode=value_schema_id_prefix" in script
    # the consumers' dead-letter topics (no schema) are created too
    for topic in ("internal.user.message.dead-letter", "internal.media.consumer.dead-letter"):
        assert topic in script
    bootstrap = (opslib.REPO / "scripts" / "stack" / "bootstrap.py").read_text()
    for extra in re.findall(r'"((?:internal|public)\.[a-z.-]+)"', bootstrap.split("EXTRA_TOPICS", 1)[1].split(")", 1)[0]):
        assert extra in script, f"{extra} is created by the local stack but not by redpanda-topics.sh"
    none_block = script.split("compatibility_none=(", 1)[1].split(")", 1)[0].split()
    for topic in none_block:
        path = opslib.REPO / "avro" / (topic.replace(".", "/", 2) + ".avsc")
        assert path.is_file(), f"{topic}: no schema at {path}"


def test_clickhouse_and_routes_are_mounted(compose_model: dict[str, Any]) -> None:
    targets = {v["target"] for v in compose_model["services"]["clickhouse"]["volumes"]}
    assert "/etc/clickhouse-server/config.d/kafka_sasl.xml" in targets
    assert "/docker-entrypoint-initdb.d/init.sql" in targets
