"""Helm chart: lint, render with both values files, Kubernetes schema validation of every
manifest, and the properties the platform relies on."""

from __future__ import annotations

import copy
import re
from collections import Counter
from typing import Any

import opslib
import pytest
import yaml

SERVICES = {"api-gateway": 8080, "media-service": 8090, "message-consumer": 8091}
# Custom resources without a schema in kubernetes-validate: validated where possible (the pod
# template of a FlinkDeployment is a core Pod), otherwise listed as skipped.
CUSTOM_KINDS = {"FlinkDeployment", "ScaledObject", "TriggerAuthentication"}


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


@pytest.mark.parametrize("values_name", sorted(opslib.VALUES_FILES))
def test_helm_lint(values_name: str) -> None:
    import helm_python as helm

    report = helm.lint(opslib.CHART, opslib.load_values(values_name), strict=True,
                       namespace=opslib.NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # 2 warning, 3 error
    assert not report["errors"] and not problems, report


def test_chart_renders_the_expected_objects(rendered: list[dict[str, Any]], values_name: str) -> None:
    kinds = Counter(d["kind"] for d in rendered)
    assert kinds["Deployment"] == 3
    assert set(by_kind(rendered, "Deployment")) == set(SERVICES)
    assert set(by_kind(rendered, "Service")) == {"api-gateway", "media-service"}
    assert set(by_kind(rendered, "FlinkDeployment")) == {
        "login-events-processor", "credit-check-processor", "ttl-expiry-processor",
        "move-saga-processor", "pyflink-echo-job",
    }
    assert "Secret" not in kinds, "the chart must reference Secrets, never create them"
    if values_name == "production":
        assert "NetworkPolicy" in kinds
    assert set(by_kind(rendered, "PodDisruptionBudget")) == set(SERVICES)
    assert set(by_kind(rendered, "HorizontalPodAutoscaler")) == {"api-gateway", "media-service"}
    assert set(by_kind(rendered, "Job")) == {"event-substrate-bootstrap"}
    assert {"ServiceAccount", "Role", "RoleBinding"} <= set(kinds)
    for doc in rendered:
        assert doc["metadata"]["namespace"] == opslib.NAMESPACE


def test_every_manifest_is_valid_kubernetes(rendered: list[dict[str, Any]], values_name: str) -> None:
    import kubernetes_validate

    validated: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    failures = []
    for doc in rendered:
        plain = opslib.strip_private(doc)
        try:
            kubernetes_validate.validate(plain, opslib.KUBERNETES_VERSION, strict=True)
            validated[plain["kind"]] += 1
        except kubernetes_validate.utils.SchemaNotFoundError:
            assert plain["kind"] in CUSTOM_KINDS, f"unexpected kind without schema: {plain['kind']}"
            skipped[f"{plain['kind']} ({plain['apiVersion']})"] += 1
            if plain["kind"] == "FlinkDeployment":
                pod = copy.deepcopy(plain["spec"]["podTemplate"])
                pod.setdefault("metadata", {})["name"] = plain["metadata"]["name"]
                try:
                    kubernetes_validate.validate(pod, opslib.KUBERNETES_VERSION, strict=True)
                    validated["Pod (FlinkDeployment.spec.podTemplate)"] += 1
                except kubernetes_validate.utils.ValidationError as error:
                    failures.append(f"{plain['metadata']['name']} podTemplate: {error.message} at {list(error.path)}")
        except kubernetes_validate.utils.ValidationError as error:
            failures.append(f"{plain['kind']}/{plain['metadata']['name']}: {error.message} at {list(error.path)}")
    opslib.REPORT.setdefault("kubernetes-validate (strict, Kubernetes %s)" % opslib.KUBERNETES_VERSION, []).extend([
        f"{values_name} values: validated " + ", ".join(f"{k} x{n}" for k, n in sorted(validated.items())),
        f"{values_name} values: skipped (custom resources, no schema) "
        + ", ".join(f"{k} x{n}" for k, n in sorted(skipped.items())),
    ])
    assert not failures, "\n".join(failures)
    assert validated["Deployment"] == 3


def test_validator_rejects_a_broken_deployment(rendered: list[dict[str, Any]]) -> None:
    import kubernetes_validate

    deployment = copy.deepcopy(opslib.strip_private(by_kind(rendered, "Deployment")["api-gateway"]))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/x"
    with pytest.raises(kubernetes_validate.utils.ValidationError):
        kubernetes_validate.validate(deployment, opslib.KUBERNETES_VERSION, strict=True)


def test_values_schema_rejects_unsafe_or_misspelled_values() -> None:
    import helm_python as helm

    with helm.Chart.load(opslib.CHART) as chart:
        for bad in (
            {"containerSecurityContext": {"readOnlyRootFilesystem": False}},
            {"apiGateway": {"replicas": "two"}},
            {"apiGateway": {"routes": {"webhookRoutes": {"log.in": "public.identity.login.events"}}}},
            {"flink": {"upgradeMode": "stateless-please"}},
            {"messageConsumer": {"keda": {"lagThreshold": 5}}},
            {"unknownSection": {}},
            # images are versions, never `latest`; Flink never writes as the superuser
            {"apiGateway": {"image": {"tag": "latest"}}},
            {"global": {"imageTag": "latest"}},
            {"flink": {"postgres": {"user": "postgres"}}},
            # nor do the services: each has its own role, and there is no shared one any more
            {"apiGateway": {"postgres": {"user": "postgres"}}},
            {"mediaService": {"postgres": {"user": "supabase_admin"}}},
            {"messageConsumer": {"postgres": {"user": "postgres"}}},
            {"postgres": {"user": "postgres"}},
            {"flink": {"taskManager": {"memory": "1Gi"}}},
        ):
            with pytest.raises(helm.HelmError):
                chart.validate_schema(bad)


def test_routes_configmap_is_mounted_as_a_directory(rendered: list[dict[str, Any]], values_name: str) -> None:
    configmap = by_kind(rendered, "ConfigMap")["api-gateway-routes"]
    routes = yaml.safe_load(configmap["data"]["routes.yaml"])
    values = opslib.load_values(values_name) or {}
    expected = (values.get("apiGateway", {}).get("routes")
                or yaml.safe_load((opslib.CHART / "values.yaml").read_text())["apiGateway"]["routes"])
    assert routes == expected
    # the chart's default routes are the ones shipped in the image (the gateway's config/routes.yaml)
    assert yaml.safe_load((opslib.CHART / "values.yaml").read_text())["apiGateway"]["routes"] == \
        yaml.safe_load((opslib.REPO / "crates/api-gateway/config/routes.yaml").read_text())

    pod = by_kind(rendered, "Deployment")["api-gateway"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    routes_volumes = [n for n, v in volumes.items() if v.get("configMap", {}).get("name") == "api-gateway-routes"]
    assert len(routes_volumes) == 1
    (container,) = pod["containers"]
    mounts = [m for m in container["volumeMounts"] if m["name"] == routes_volumes[0]]
    assert len(mounts) == 1
    mount = mounts[0]
    assert "subPath" not in mount and "subPathExpr" not in mount, "subPath mounts never receive updates"
    assert mount["mountPath"] == "/app/routes"
    assert "items" not in volumes[routes_volumes[0]]["configMap"]
    assert env_of(container)["APP__GATEWAY__ROUTES_FILE"]["value"] == "/app/routes/routes.yaml"


def test_services_run_hardened_with_probes(rendered: list[dict[str, Any]]) -> None:
    for name, port in SERVICES.items():
        pod = by_kind(rendered, "Deployment")[name]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        (container,) = pod["containers"]
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
        assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["port"] == "http"
        # a slow start gets a minute before liveness may restart the pod
        startup = container["startupProbe"]
        assert startup["httpGet"] == {"path": "/healthz", "port": "http"}
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 60


def test_secrets_are_referenced_never_inlined(rendered: list[dict[str, Any]]) -> None:
    sensitive = ("PASSWORD", "SECRET", "TOKEN", "ACCESS_KEY")
    for doc in rendered:
        pods = []
        if doc["kind"] in {"Deployment", "Job"}:
            pods = [doc["spec"]["template"]["spec"]]
        elif doc["kind"] == "FlinkDeployment":
            pods = [doc["spec"]["podTemplate"]["spec"]]
        for pod in pods:
            for container in pod.get("initContainers", []) + pod["containers"]:
                for name, entry in env_of(container).items():
                    if any(word in name for word in sensitive):
                        assert "value" not in entry, f"{doc['metadata']['name']}: {name} is inlined"
                        assert entry["valueFrom"]["secretKeyRef"]["name"]
                    if name.endswith("DB_URL") and "value" in entry:
                        # the address is a value (postgres section); the password never is
                        # (PGPASSWORD from the Secret)
                        assert not re.search(r"://[^/@]*:[^/@]*@", entry["value"]), \
                            f"{doc['metadata']['name']}: {name} carries a password"
                        assert env_of(container)["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["name"]
    text = yaml.safe_dump_all([opslib.strip_private(d) for d in rendered])
    for development_secret in ("local-pw", "super-secret-", "local-token"):
        assert development_secret not in text


def test_keda_scales_the_consumer_with_sasl(rendered: list[dict[str, Any]]) -> None:
    scaled = by_kind(rendered, "ScaledObject")["message-consumer-scaledobject"]
    auth = by_kind(rendered, "TriggerAuthentication")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "message-consumer"
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["topic"] == "public.user.message.events"
    assert trigger["metadata"]["sasl"] in {"scram_sha256", "scram_sha512"}
    consumer = by_kind(rendered, "Deployment")["message-consumer"]
    (container,) = consumer["spec"]["template"]["spec"]["containers"]
    assert trigger["metadata"]["consumerGroup"] == env_of(container)["APP__CONSUMER__GROUP_ID"]["value"]
    assert "replicas" not in consumer["spec"], "KEDA owns the replica count"
    target = auth[trigger["authenticationRef"]["name"]]
    parameters = {ref["parameter"]: ref for ref in target["spec"]["secretTargetRef"]}
    assert {"username", "password"} <= set(parameters)
    assert scaled["spec"]["maxReplicaCount"] >= scaled["spec"]["minReplicaCount"] >= 1


def test_flink_deployments_checkpoint_exactly_once(rendered: list[dict[str, Any]]) -> None:
    flink = by_kind(rendered, "FlinkDeployment")
    for name, doc in flink.items():
        assert doc["apiVersion"] == "flink.apache.org/v1beta1"
        spec = doc["spec"]
        conf = spec["flinkConfiguration"]
        assert conf["execution.checkpointing.mode"] == "EXACTLY_ONCE"
        assert int(conf["execution.checkpointing.interval"].split()[0]) > 0
        assert conf["execution.checkpointing.dir"].endswith(f"/{name}/checkpoints")
        assert conf["high-availability.type"] == "kubernetes"
        assert spec["job"]["upgradeMode"] == "last-state"
        assert spec["job"]["entryClass"] == "org.apache.flink.client.python.PythonDriver"
        (container,) = spec["podTemplate"]["spec"]["containers"]
        assert container["name"] == "flink-main-container"
        env = env_of(container)
        assert env["FLINK_CHECKPOINT_INTERVAL_MS"]["value"] == conf["execution.checkpointing.interval"].split()[0]
        assert env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
        # every script and SQL file the job names exists in the repository
        args = spec["job"]["args"]
        code_dir = "/opt/event-substrate/"
        files = [a for a in args if a.startswith(code_dir)]
        assert files and files[0].endswith(".py")
        for path in files:
            assert (opslib.REPO / path[len(code_dir):]).is_file(), path
    sql_args = flink["login-events-processor"]["spec"]["job"]["args"]
    assert [a.rsplit("/", 1)[1] for a in sql_args if a.endswith(".sql")] == [
        "login_events_processor.sql", "signup_events_processor.sql", "signout_events_processor.sql",
        "unified_events_processor.sql", "credit_balance_processor.sql", "media_notification_processor.sql",
    ]


def service_containers(rendered: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    deployments = by_kind(rendered, "Deployment")
    return {name: deployments[name]["spec"]["template"]["spec"]["containers"][0] for name in SERVICES}


def registry_clients(rendered: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The containers that call the registry: the services and every Flink job (whose
    avro-confluent format reads the same variables, flink_jobs/sql_runner.py)."""
    containers = service_containers(rendered)
    flink = by_kind(rendered, "FlinkDeployment")
    assert flink, "no FlinkDeployment rendered"
    for name, deployment in flink.items():
        (containers[name],) = deployment["spec"]["podTemplate"]["spec"]["containers"]
    return containers


def test_services_send_registry_credentials_where_the_registry_requires_them(
    rendered: list[dict[str, Any]], values_name: str
) -> None:
    values = opslib.load_values(values_name) or {}
    requires_auth = values.get("bootstrap", {}).get("registryAuth", False)
    assert requires_auth == (values_name == "production")
    for name, container in registry_clients(rendered).items():
        env = env_of(container)
        if not requires_auth:
            assert "SCHEMA_REGISTRY_USERNAME" not in env and "SCHEMA_REGISTRY_PASSWORD" not in env, name
            continue
        # each service as its own Kafka user, the password from the Kafka Secret (Redpanda's
        # registry with SASL checks the SASL users)
        user = env["KAFKA_SASL_USERNAME"]["value"]
        assert env["SCHEMA_REGISTRY_USERNAME"] == {"name": "SCHEMA_REGISTRY_USERNAME", "value": user}, name
        assert env["SCHEMA_REGISTRY_PASSWORD"]["valueFrom"]["secretKeyRef"] == \
            env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"], name
    # the registry's Secret defaults to the Kafka Secret, created in README "Deploy"
    defaults = yaml.safe_load((opslib.CHART / "values.yaml").read_text())["secrets"]
    assert defaults["schemaRegistry"]["existingSecret"] == defaults["kafka"]["existingSecret"]


def test_registry_credentials_can_come_from_a_secret_of_their_own() -> None:
    docs = opslib.manifests(opslib.render_chart({
        "schemaRegistry": {"auth": {"enabled": True}},
        "secrets": {"schemaRegistry": {"existingSecret": "registry-logins"}},
    }))
    for name, container in registry_clients(docs).items():
        env = env_of(container)
        user = env["KAFKA_SASL_USERNAME"]["value"]
        assert env["SCHEMA_REGISTRY_PASSWORD"]["valueFrom"]["secretKeyRef"] == \
            {"name": "registry-logins", "key": user}, name


def test_kafka_tls_is_off_by_default_and_mounts_the_ca_file_when_on(
    rendered: list[dict[str, Any]],
) -> None:
    # both values files keep the internal listener's plaintext (SASL_PLAINTEXT)
    for name, container in service_containers(rendered).items():
        env = env_of(container)
        assert "APP__KAFKA__TLS" not in env and "APP__KAFKA__SSL_CA_FILE" not in env, name
    for source, volume_source in (
        ({"secretName": "redpanda-default-cert"}, {"secret": {"secretName": "redpanda-default-cert"}}),
        ({"configMapName": "kafka-ca"}, {"configMap": {"name": "kafka-ca"}}),
    ):
        docs = opslib.manifests(opslib.render_chart(
            {"kafka": {"tls": {"enabled": True, "ca": {**source, "key": "ca.crt"}}}}
        ))
        for name, container in service_containers(docs).items():
            env = env_of(container)
            assert env["APP__KAFKA__TLS"]["value"] == "true", name
            ca_file = env["APP__KAFKA__SSL_CA_FILE"]["value"]
            pod = by_kind(docs, "Deployment")[name]["spec"]["template"]["spec"]
            volume = {v["name"]: v for v in pod["volumes"]}["kafka-ca"]
            (kind,) = volume_source
            assert volume[kind] == {**volume_source[kind], "items": [{"key": "ca.crt", "path": "ca.crt"}]}
            mount = {m["name"]: m for m in container["volumeMounts"]}["kafka-ca"]
            assert f"{mount['mountPath']}/ca.crt" == ca_file and mount["readOnly"] is True, name
    # TLS without a CA: the system trust store, no file
    docs = opslib.manifests(opslib.render_chart({"kafka": {"tls": {"enabled": True}}}))
    for name, container in service_containers(docs).items():
        env = env_of(container)
        assert env["APP__KAFKA__TLS"]["value"] == "true" and "APP__KAFKA__SSL_CA_FILE" not in env, name


def test_values_schema_rejects_inconsistent_registry_and_kafka_security() -> None:
    import helm_python as helm

    with helm.Chart.load(opslib.CHART) as chart:
        for bad in (
            # the registry requires auth, the services would send none: 401 on every call
            {"bootstrap": {"registryAuth": True}, "schemaRegistry": {"auth": {"enabled": False}}},
            {"schemaRegistry": {"auth": {"enabled": "yes"}}},
            {"kafka": {"tls": {"enabled": "true"}}},
            {"kafka": {"tls": {"enabled": True, "ca": {"secretName": "a", "configMapName": "b"}}}},
            {"kafka": {"tls": {"enabled": True, "protocol": "SSL"}}},
        ):
            with pytest.raises(helm.HelmError):
                chart.validate_schema(bad)
        chart.validate_schema({"bootstrap": {"registryAuth": True}, "schemaRegistry": {"auth": {"enabled": True}}})
