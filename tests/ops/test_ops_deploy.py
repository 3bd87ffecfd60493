"""Deployment policy and consistency (issue #17): every manifest the chart renders follows the
platform's rules (versioned images, resources, non-root, probes, disruption budgets and
autoscaling, Flink sized and scoped), docker-compose.yml and the chart describe one topology
with the same ports, environment names, topics and groups, and CI, the task catalogue and the
README's "Deploy" section agree with the chart."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import opslib
import pytest
import yaml

SERVICES = {"api-gateway": 8080, "media-service": 8090, "message-consumer": 8091}
HTTP_SERVICES = {"api-gateway", "media-service"}  # scaled by an HPA (the consumer: KEDA)
VALUES_KEY = {"api-gateway": "apiGateway", "media-service": "mediaService", "message-consumer": "messageConsumer"}
CHART_YAML = yaml.safe_load((opslib.CHART / "Chart.yaml").read_text())
APP_VERSION = str(CHART_YAML["appVersion"])
OWN_IMAGES = ("event-substrate-api-gateway", "event-substrate-media-service",
              "event-substrate-message-consumer", "event-substrate-pyflink")
AVRO = opslib.REPO / "avro"
INFRA = opslib.REPO / "scripts" / "infra"

# Environment names only the chart sets, with the reason: the routes file is a ConfigMap mount
# in the cluster (compose uses the one baked into the image), and LOG_LEVEL is rendered only when
# telemetry.logFilter is set.
CHART_ONLY_ENV = {"APP__GATEWAY__ROUTES_FILE", "LOG_LEVEL"}

# The original platform's uids (platform spec §9.4 dashboards, §9.5 alert rules).
ORIGINAL_DASHBOARDS = {"go-services", "kafka-redpanda", "kubernetes", "media-saga", "platform-overview", "airflow"}
ORIGINAL_ALERTS = {
    "flink-job-down", "postgres-connections-high", "kafka-consumer-lag-high", "go-service-down",
    "go-service-high-error-rate", "go-service-high-latency", "media-saga-dlq-growing",
    "redpanda-disk-high", "k8s-pod-crashloop", "k8s-pod-pending", "airflow-scheduler-down",
    "airflow-dag-failure",
}
ORIGINAL_GROUPS = {"go-message-consumer", "media-service-consumer"}


# ------------------------------------------------------------------------------------------
# helpers

def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def pod_specs(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(object, pod spec) of every pod the chart defines, FlinkDeployment pod templates included."""
    pods = []
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] in {"Deployment", "Job", "StatefulSet", "DaemonSet"}:
            pods.append((name, doc["spec"]["template"]["spec"]))
        elif doc["kind"] == "FlinkDeployment":
            pods.append((name, doc["spec"]["podTemplate"]["spec"]))
    return pods


def all_containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return pod.get("initContainers", []) + pod["containers"]


def image_references(docs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    refs = []
    for name, pod in pod_specs(docs):
        refs += [(name, c["image"]) for c in all_containers(pod) if "image" in c]
    refs += [(f"FlinkDeployment/{d['metadata']['name']}", d["spec"]["image"])
             for d in docs if d["kind"] == "FlinkDeployment"]
    return refs


def mebibytes(quantity: str) -> int:
    match = re.fullmatch(r"([0-9]+)(m|g|Mi|Gi)", quantity)
    assert match, quantity
    number, unit = int(match.group(1)), match.group(2)
    return number * 1024 if unit in {"g", "Gi"} else number


def merged_values(values_name: str) -> dict[str, Any]:
    """values.yaml with the values file on top (Helm's coalescing of maps)."""
    import helm_python as helm

    with helm.Chart.load(opslib.CHART) as chart:
        return chart.merge_values(opslib.load_values(values_name))


def compose_env(model: dict[str, Any], service: str) -> dict[str, str]:
    return model["services"][service].get("environment") or {}


def published(model: dict[str, Any], service: str) -> set[int]:
    return {int(p["published"]) for p in model["services"][service].get("ports", [])}


def avro_topics() -> set[str]:
    return {".".join(p.relative_to(AVRO).with_suffix("").parts) for p in AVRO.rglob("*.avsc")}


# ------------------------------------------------------------------------------------------
# policy over the rendered manifests (both values files)

def test_images_are_versions_never_latest(rendered: list[dict[str, Any]], values_name: str) -> None:
    refs = image_references(rendered)
    assert refs
    for where, image in refs:
        name, _, tag = image.rpartition(":")
        assert name and "/" not in tag, f"{where}: {image} has no tag"
        assert tag != "latest", f"{where}: {image}"
        if name.rsplit("/", 1)[-1] in OWN_IMAGES:
            # this project's images default to the chart's appVersion (what CI pushes)
            assert tag == APP_VERSION, f"{where}: {image} is not the chart's appVersion {APP_VERSION}"
    policies = {d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"]
                for d in rendered if d["kind"] == "Deployment"}
    assert policies == {"IfNotPresent"}
    opslib.REPORT.setdefault("deployment policy", []).append(
        f"{values_name} values: {len(refs)} image references, all tagged, none `latest`, ours at {APP_VERSION}"
    )


def test_global_image_tag_overrides_the_app_version() -> None:
    docs = opslib.manifests(opslib.render_chart({"global": {"imageTag": "0123abc"}}))
    own = [image for _, image in image_references(docs) if image.split(":")[0].rsplit("/", 1)[-1] in OWN_IMAGES]
    assert own and all(image.endswith(":0123abc") for image in own)
    # the bootstrap Job's third-party image keeps its own tag and registry
    (job,) = by_kind(docs, "Job").values()
    assert job["spec"]["template"]["spec"]["containers"][0]["image"].startswith("docker.redpanda.com/")


def test_every_container_has_requests_and_limits(rendered: list[dict[str, Any]]) -> None:
    for where, pod in pod_specs(rendered):
        if where.startswith("FlinkDeployment/"):
            continue  # the operator sizes the Flink containers from spec.*.resource (below)
        for container in all_containers(pod):
            resources = container.get("resources") or {}
            requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
            assert {"cpu", "memory"} <= set(requests), f"{where} {container['name']}: requests {requests}"
            assert {"cpu", "memory"} <= set(limits), f"{where} {container['name']}: limits {limits}"
    for name, doc in by_kind(rendered, "FlinkDeployment").items():
        for role in ("jobManager", "taskManager"):
            resource = doc["spec"][role]["resource"]
            assert resource["memory"] and float(resource["cpu"]) > 0, f"{name} {role}"


def test_every_pod_runs_as_non_root(rendered: list[dict[str, Any]]) -> None:
    pods = pod_specs(rendered)
    assert {w.split("/")[0] for w, _ in pods} == {"Deployment", "Job", "FlinkDeployment"}
    for where, pod in pods:
        context = pod.get("securityContext") or {}
        assert context.get("runAsNonRoot") is True, where
        assert context.get("runAsUser", 1) != 0, where
        for container in all_containers(pod):
            security = container.get("securityContext") or {}
            assert security.get("runAsUser", 1) != 0, f"{where} {container['name']}"
            assert security.get("allowPrivilegeEscalation") is False, f"{where} {container['name']}"
            assert security.get("privileged", False) is False, f"{where} {container['name']}"
            assert "ALL" in security["capabilities"]["drop"], f"{where} {container['name']}"


def test_services_have_startup_liveness_and_readiness_probes(rendered: list[dict[str, Any]]) -> None:
    deployments = by_kind(rendered, "Deployment")
    assert set(deployments) == set(SERVICES)
    for name, doc in deployments.items():
        for container in doc["spec"]["template"]["spec"]["containers"]:
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert container.get(probe, {}).get("httpGet"), f"{name}: no {probe}"


def test_disruption_budgets_and_autoscalers_cover_the_services(rendered: list[dict[str, Any]], values_name: str) -> None:
    deployments = by_kind(rendered, "Deployment")
    budgets = by_kind(rendered, "PodDisruptionBudget")
    autoscalers = by_kind(rendered, "HorizontalPodAutoscaler")
    values = merged_values(values_name)
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        budget = budgets[name]["spec"]
        assert budget["selector"]["matchLabels"].items() <= labels.items(), name
        # maxUnavailable never blocks the drain of a single replica (minAvailable: 1 would)
        assert "maxUnavailable" in budget and "minAvailable" not in budget, name
    for name in HTTP_SERVICES:
        spec = autoscalers[name]["spec"]
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert 1 <= spec["minReplicas"] <= spec["maxReplicas"]
        (metric,) = spec["metrics"]
        assert metric["resource"]["name"] == "cpu"
        # the HPA owns the replica count; CPU utilisation needs a CPU request
        assert "replicas" not in deployments[name]["spec"], name
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert container["resources"]["requests"]["cpu"]
        assert spec["minReplicas"] == values[VALUES_KEY[name]]["autoscaling"]["minReplicas"]
    assert "message-consumer" not in autoscalers, "KEDA scales the message-consumer"
    assert "message-consumer-scaledobject" in by_kind(rendered, "ScaledObject")


def test_flink_taskmanagers_are_sized_for_rocksdb_and_python(rendered: list[dict[str, Any]]) -> None:
    for name, doc in by_kind(rendered, "FlinkDeployment").items():
        spec = doc["spec"]
        assert mebibytes(spec["taskManager"]["resource"]["memory"]) >= 2048, name
        conf = spec["flinkConfiguration"]
        fraction = float(conf["taskmanager.memory.managed.fraction"])
        assert 0.2 <= fraction <= 0.7, name
        weights = dict(w.split(":") for w in conf["taskmanager.memory.managed.consumer-weights"].split(","))
        assert int(weights["STATE_BACKEND"]) > 0 and int(weights["PYTHON"]) > 0, name
        assert conf["state.backend.type"] == "rocksdb"


def test_flink_has_its_service_account_and_ha_rbac(rendered: list[dict[str, Any]]) -> None:
    flink = by_kind(rendered, "FlinkDeployment")
    (account,) = {d["spec"]["serviceAccount"] for d in flink.values()}
    assert account in by_kind(rendered, "ServiceAccount")
    role = by_kind(rendered, "Role")[account]
    verbs: dict[str, set[str]] = {}
    for rule in role["rules"]:
        for resource in rule["resources"]:
            verbs.setdefault(resource, set()).update(rule["verbs"])
    # Kubernetes HA: leader election and job metadata in ConfigMaps, cleaned up by label
    assert {"get", "list", "watch", "create", "update", "delete", "deletecollection"} <= verbs["configmaps"]
    # native resource management: the JobManager creates and removes TaskManager pods
    assert {"get", "list", "watch", "create", "delete"} <= verbs["pods"]
    assert "*" not in {v for vs in verbs.values() for v in vs}
    assert "secrets" not in verbs
    binding = by_kind(rendered, "RoleBinding")[account]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": opslib.NAMESPACE}]


def test_flink_writes_postgres_as_its_least_privilege_role(rendered: list[dict[str, Any]], values_name: str) -> None:
    values = merged_values(values_name)
    assert values["flink"]["postgres"]["user"] == "flink_writer"
    writers = 0
    for name, doc in by_kind(rendered, "FlinkDeployment").items():
        (container,) = doc["spec"]["podTemplate"]["spec"]["containers"]
        env = env_of(container)
        if "SUPABASE_DB_USER" not in env:
            continue
        writers += 1
        assert env["SUPABASE_DB_USER"]["value"] == "flink_writer", name
        key = env["SUPABASE_DB_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert key["key"] == values["secrets"]["postgres"]["flinkPasswordKey"]
        # one Postgres address: the services' URL and the JDBC URL name the same database
        pg = values["postgres"]
        assert env["SUPABASE_DB_JDBC_URL"]["value"].startswith(
            f"jdbc:postgresql://{pg['host']}:{pg['port']}/{pg['database']}?sslmode={pg['sslmode']}&")
    assert writers == 2  # the SQL runner and the credit check


# the least-privilege role of each service (migration 20261201000300_service_roles.sql)
DB_ROLES = {"api-gateway": "api_gateway", "media-service": "media_service", "message-consumer": "message_consumer"}


def test_services_connect_as_their_own_least_privilege_roles(
        rendered: list[dict[str, Any]], values_name: str, compose_model: dict[str, Any]) -> None:
    values = merged_values(values_name)
    pg, secret = values["postgres"], values["secrets"]["postgres"]
    migration = (opslib.REPO / "supabase" / "migrations" / "20261201000300_service_roles.sql").read_text()
    script = (INFRA / "postgres-roles.sh").read_text()
    init = compose_env(compose_model, "postgres-roles-init")
    owner = urlsplit(init["DATABASE_URL"])
    keys = set()
    for name, role in DB_ROLES.items():
        assert values[VALUES_KEY[name]]["postgres"]["user"] == role, name
        assert f"'{role}'" in migration, role  # the migration creates it
        # the chart: the service's role in the URL of the one database, its own password key
        (container,) = by_kind(rendered, "Deployment")[name]["spec"]["template"]["spec"]["containers"]
        env = env_of(container)
        url = urlsplit(env["SUPABASE_DB_URL"]["value"])
        assert (url.username, url.password) == (role, None), name
        assert (url.hostname, url.port, url.path) == (pg["host"], pg["port"], f"/{pg['database']}"), name
        key = env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]
        assert key == {"name": secret["existingSecret"], "key": secret[f"{VALUES_KEY[name]}PasswordKey"]}, name
        keys.add(key["key"])
        # compose: the same role, with the password postgres-roles-init gives it, same database
        compose = compose_env(compose_model, name)
        compose_url = urlsplit(compose["SUPABASE_DB_URL"])
        assert (compose_url.username, compose_url.password) == (role, None), name
        assert (compose_url.hostname, compose_url.port, compose_url.path) == (owner.hostname, owner.port, owner.path)
        variable = f"{role.upper()}_DB_PASSWORD"
        assert f"[{role}]={variable}" in script
        assert init[variable] == compose["PGPASSWORD"] != init["PGPASSWORD"], name
        depends = compose_model["services"][name]["depends_on"]["postgres-roles-init"]
        assert depends["condition"] == "service_completed_successfully", name
    assert len(keys) == len(DB_ROLES) and secret["flinkPasswordKey"] not in keys
    assert urlsplit(init["DATABASE_URL"]).username == "postgres"
    assert compose_model["services"]["postgres-roles-init"]["entrypoint"] == ["bash", "/scripts/postgres-roles.sh"]


def test_flink_versions_match_the_image(rendered: list[dict[str, Any]]) -> None:
    dockerfile = (opslib.REPO / "docker" / "Dockerfile.pyflink").read_text()
    version = re.search(r"^ARG FLINK_VERSION=(\S+)$", dockerfile, re.M).group(1)
    major, minor = version.split(".")[:2]
    for name, doc in by_kind(rendered, "FlinkDeployment").items():
        spec = doc["spec"]
        assert spec["flinkVersion"] == f"v{major}_{minor}", name
        assert spec["job"]["jarURI"].endswith(f"/flink-python-{version}.jar"), name
        (container,) = spec["podTemplate"]["spec"]["containers"]
        assert env_of(container)["ENABLE_BUILT_IN_PLUGINS"]["value"] == f"flink-s3-fs-hadoop-{version}.jar"


def test_bootstrap_job_is_a_hook_running_the_repository_scripts(rendered: list[dict[str, Any]], values_name: str) -> None:
    values = merged_values(values_name)
    (job,) = by_kind(rendered, "Job").values()
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    configmaps = by_kind(rendered, "ConfigMap")
    scripts = configmaps["event-substrate-bootstrap-scripts"]
    schemas = configmaps["event-substrate-bootstrap-avro"]
    for configmap in (scripts, schemas):
        # created before the Job (ordinary resources come only after the pre-install hooks)
        assert configmap["metadata"]["annotations"]["helm.sh/hook"] == annotations["helm.sh/hook"]
        assert int(configmap["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(annotations["helm.sh/hook-weight"])
        assert "hook-succeeded" not in configmap["metadata"]["annotations"]["helm.sh/hook-delete-policy"]
    # the very scripts compose's init containers run
    for name in ("redpanda-auth.sh", "redpanda-topics.sh", "kafka-acls.txt"):
        assert scripts["data"][name].rstrip("\n") == (INFRA / name).read_text().rstrip("\n"), name
    # every schema, flattened to <topic>.avsc, with its content
    expected = {".".join(p.relative_to(AVRO).parts): p.read_text() for p in AVRO.rglob("*.avsc")}
    assert {k: v.rstrip("\n") for k, v in schemas["data"].items()} == {k: v.rstrip("\n") for k, v in expected.items()}

    pod = job["spec"]["template"]["spec"]
    (users,) = pod["initContainers"]
    (topics,) = pod["containers"]
    assert users["command"] == ["bash", "/scripts/redpanda-auth.sh"]
    assert topics["command"] == ["bash", "/scripts/redpanda-topics.sh"]
    users_env, topics_env = env_of(users), env_of(topics)
    # passwords come from the mounted Secret only (no development default can apply)
    assert users_env["KAFKA_USERS_DIR"]["value"] in {m["mountPath"] for m in users["volumeMounts"]}
    assert users_env["MESSAGE_CONSUMER_GROUP"]["value"] == values["messageConsumer"]["consumerGroup"]
    assert users_env["RPK_BROKERS"]["value"] == topics_env["RPK_BROKERS"]["value"] == values["kafka"]["brokers"]
    assert topics_env["SUPERUSER_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": values["secrets"]["kafka"]["existingSecret"], "key": "superuser"}
    registry = urlsplit(values["schemaRegistry"]["url"])
    assert topics_env["REGISTRY_HOSTS"]["value"] == registry.netloc
    assert topics_env["MESSAGE_TOPIC_PARTITIONS"]["value"] == str(values["bootstrap"]["topics"]["messagePartitions"])
    volumes = {v["name"]: v for v in pod["volumes"]}
    sources = volumes["kafka-passwords"]["projected"]["sources"]
    assert {"name": values["secrets"]["kafka"]["existingSecret"]} in [s["secret"] for s in sources]
    keda = [s["secret"] for s in sources if s["secret"].get("items")]
    assert keda == [{"name": values["secrets"]["keda"]["existingSecret"],
                     "items": [{"key": values["secrets"]["keda"]["passwordKey"], "path": "keda-scaler"}]}]
    assert pod["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] >= 1


def test_bootstrap_manages_every_user_the_chart_logs_in_as(rendered: list[dict[str, Any]]) -> None:
    script = (INFRA / "redpanda-auth.sh").read_text()
    managed = set(re.findall(r'^\s+\[([a-z-]+)\]="\$\{[A-Z_]+:-', script, re.M))
    users = set()
    for _, pod in pod_specs(rendered):
        for container in all_containers(pod):
            env = env_of(container)
            if "KAFKA_SASL_USERNAME" in env:
                users.add(env["KAFKA_SASL_USERNAME"]["value"])
                # the Kafka Secret's key is the user name, the same file the bootstrap reads
                assert env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == env["KAFKA_SASL_USERNAME"]["value"]
    assert users == {"api-gateway", "media-service", "message-consumer", "flink-processor"}
    assert users | {"superuser", "keda-scaler"} <= managed
    # a user the bootstrap does not manage gets no ACLs (KAFKA_USERS_DIR mode)
    assert '[[ -n "${passwords[$principal]+set}" ]] || continue' in script
    # and no password has a development default the chart could ship
    assert not re.search(r"local-pw", script)


# ------------------------------------------------------------------------------------------
# the values schema: one existingSecret per concern, required by the features that use it

SECRET_CONCERNS = {
    # concern: (values that enable the feature, values that disable every user of the secret)
    "kafka": ({}, {"apiGateway": {"enabled": False}, "mediaService": {"enabled": False},
                   "messageConsumer": {"enabled": False}, "flink": {"enabled": False},
                   "bootstrap": {"enabled": False}}),
    "keda": ({}, {"messageConsumer": {"keda": {"enabled": False}}}),
    "postgres": ({}, {"apiGateway": {"enabled": False}, "mediaService": {"enabled": False},
                      "messageConsumer": {"enabled": False}, "flink": {"enabled": False}}),
    "objectStore": ({}, {"apiGateway": {"enabled": False}, "mediaService": {"enabled": False},
                         "flink": {"enabled": False}}),
    "webhook": ({}, {"apiGateway": {"enabled": False}}),
    "jwt": ({"apiGateway": {"auth": {"jwksUrl": ""}}}, {"apiGateway": {"auth": {"jwksUrl": "https://auth.example.com/jwks"}}}),
    "mediaWebhook": ({}, {"mediaService": {"enabled": False}}),
    # the services' registry logins; off only where the registry does not require auth
    "schemaRegistry": ({"schemaRegistry": {"auth": {"enabled": True}}},
                       {"schemaRegistry": {"auth": {"enabled": False}}, "bootstrap": {"registryAuth": False}}),
}


@pytest.mark.parametrize("concern", sorted(SECRET_CONCERNS))
def test_values_schema_rejects_a_missing_existing_secret(concern: str, tmp_path) -> None:
    import helm_python as helm

    enabling, disabling = SECRET_CONCERNS[concern]
    production = opslib.load_values("production")
    # a values file as an operator would write it: production values without the Secret's name
    # (null removes the chart default, as `helm --set secrets.X.existingSecret=null` does)
    missing = opslib.merge(opslib.merge(production, enabling), {"secrets": {concern: {"existingSecret": None}}})
    path = tmp_path / "values-missing-secret.yaml"
    path.write_text(yaml.safe_dump(missing))
    with helm.Chart.load(opslib.CHART) as chart:
        with pytest.raises(helm.HelmError, match="existingSecret"):
            chart.validate_schema(yaml.safe_load(path.read_text()))
        # an empty name is no name either
        with pytest.raises(helm.HelmError):
            chart.validate_schema(opslib.merge(missing, {"secrets": {concern: {"existingSecret": ""}}}))
        # without the feature that reads it, the Secret is not required
        chart.validate_schema(opslib.merge(missing, disabling))


def test_every_secret_concern_is_documented_in_the_values() -> None:
    text = (opslib.CHART / "values.yaml").read_text()
    defaults = yaml.safe_load(text)["secrets"]
    assert set(defaults) == set(SECRET_CONCERNS)
    block = text.split("\nsecrets:\n", 1)[1].split("\n# ---", 1)[0]
    for concern, entry in defaults.items():
        assert entry["existingSecret"], concern
        # each concern has a comment saying what the Secret holds
        assert re.search(rf"  # [^\n]+\n(  # [^\n]+\n)*  {concern}:\n", block), concern


# ------------------------------------------------------------------------------------------
# compose and the chart: one topology

def test_compose_runs_the_services_only_in_their_profile(compose_model: dict[str, Any]) -> None:
    for name, service in compose_model["services"].items():
        if name in SERVICES:
            assert service.get("profiles") == ["services"], name
        else:
            assert not service.get("profiles"), f"{name}: infrastructure runs in every topology"
            assert not set(service.get("depends_on") or {}) & set(SERVICES), name
    # the chart says it, compose says it: never both against one broker
    assert "never" in (opslib.REPO / "docker-compose.yml").read_text().split("\nname:", 1)[0].lower()
    assert "never run compose's `services` profile" in (opslib.CHART / "values.yaml").read_text().lower().replace("\n# ", " ")


def test_compose_and_chart_agree_on_ports(compose_model: dict[str, Any]) -> None:
    docs = opslib.manifests(opslib.render_chart(None))
    deployments = by_kind(docs, "Deployment")
    services = by_kind(docs, "Service")
    for name, port in SERVICES.items():
        assert published(compose_model, name) == {port}
        assert compose_env(compose_model, name)["APP__HTTP__PORT"] == str(port)
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert container["ports"][0]["containerPort"] == port
        assert env_of(container)["APP__HTTP__PORT"]["value"] == str(port)
        if name in services:
            assert services[name]["spec"]["ports"][0]["port"] == port


def test_compose_and_chart_agree_on_environment_names(compose_model: dict[str, Any]) -> None:
    docs = opslib.manifests(opslib.render_chart({"telemetry": {"logFilter": "info"}}))
    deployments = by_kind(docs, "Deployment")
    for name in SERVICES:
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        chart = set(env_of(container))
        compose = set(compose_env(compose_model, name))
        assert compose - chart == set(), f"{name}: only compose sets {sorted(compose - chart)}"
        assert chart - compose <= CHART_ONLY_ENV, f"{name}: only the chart sets {sorted(chart - compose - CHART_ONLY_ENV)}"
        # the same SASL user logs in from both
        assert env_of(container)["KAFKA_SASL_USERNAME"]["value"] == compose_env(compose_model, name)["KAFKA_SASL_USERNAME"]


def test_compose_and_chart_agree_on_topics_and_groups(compose_model: dict[str, Any]) -> None:
    docs = opslib.manifests(opslib.render_chart(None))
    values = merged_values("default")
    topics = avro_topics()
    # the gateway's routes name topics that exist (the bootstrap creates every avro/ topic)
    routes = yaml.safe_load(by_kind(docs, "ConfigMap")["api-gateway-routes"]["data"]["routes.yaml"])
    for table in routes.values():
        assert set(table.values()) <= topics
    # the consumer's topic and group: the service's own configuration, compose, chart and KEDA
    base = yaml.safe_load((opslib.REPO / "crates" / "message-consumer" / "config" / "base.yaml").read_text())
    assert values["messageConsumer"]["topic"] in topics
    assert base["consumer"]["topics"] == [values["messageConsumer"]["topic"]]
    group = values["messageConsumer"]["consumerGroup"]
    assert group == base["consumer"]["group_id"] == compose_env(compose_model, "message-consumer")["APP__CONSUMER__GROUP_ID"]
    assert compose_env(compose_model, "redpanda-auth-init")["MESSAGE_CONSUMER_GROUP"] == group
    (trigger,) = by_kind(docs, "ScaledObject")["message-consumer-scaledobject"]["spec"]["triggers"]
    assert trigger["metadata"]["topic"] == values["messageConsumer"]["topic"]
    assert trigger["metadata"]["consumerGroup"] == group
    # partitions of the message topic: the same in both, and KEDA never scales past them
    partitions = values["bootstrap"]["topics"]["messagePartitions"]
    assert str(partitions) == compose_env(compose_model, "redpanda-topics-init")["MESSAGE_TOPIC_PARTITIONS"]
    assert values["messageConsumer"]["keda"]["maxReplicas"] <= partitions
    # compose's init containers and the bootstrap Job run the same scripts over the same schemas
    mounts = {v["source"].rsplit("/", 1)[-1]: v["target"] for v in compose_model["services"]["redpanda-topics-init"]["volumes"]}
    assert mounts["infra"] == "/scripts" and mounts["avro"] == "/avro"
    assert compose_model["services"]["redpanda-topics-init"]["entrypoint"] == ["bash", "/scripts/redpanda-topics.sh"]
    assert compose_model["services"]["redpanda-auth-init"]["entrypoint"] == ["bash", "/scripts/redpanda-auth.sh"]


def test_local_values_point_at_what_compose_publishes(compose_model: dict[str, Any]) -> None:
    values = merged_values("default")
    command = " ".join(compose_model["services"]["redpanda"]["command"])
    advertised = dict(item.split("://", 1) for item in
                      re.search(r"--advertise-kafka-addr=(\S+)", command).group(1).split(","))
    # pods of the local cluster get a listener that advertises an address they can reach (the
    # original advertised localhost:9092 to them, which inside a pod is the pod itself)
    assert values["kafka"]["brokers"] == advertised["CLUSTER"] == "host.docker.internal:19092"
    assert not advertised["CLUSTER"].startswith(("localhost", "127."))
    assert 19092 in published(compose_model, "redpanda")
    for address, service in ((values["kafka"]["adminApi"], "redpanda"),
                             (urlsplit(values["schemaRegistry"]["url"]).netloc, "schema-registry"),
                             (values["objectStore"]["endpoint"], "minio"),
                             (urlsplit(values["telemetry"]["otlpEndpoint"]).netloc, "otel-collector")):
        host, port = address.rsplit(":", 1)
        assert host == "host.docker.internal", address
        assert int(port) in published(compose_model, service), f"{address}: {service} does not publish {port}"
    # Postgres: the Supabase CLI's database on the host, the one compose's services use too
    database = urlsplit(compose_env(compose_model, "api-gateway")["SUPABASE_DB_URL"])
    assert (values["postgres"]["host"], values["postgres"]["port"]) == (database.hostname, database.port)
    assert database.password is None and compose_env(compose_model, "api-gateway")["PGPASSWORD"]
    # MinIO's webhooks reach whichever media-service runs: compose's by default, the chart's
    # LoadBalancer (published on the host) with ./taskw compose:infra
    minio = compose_env(compose_model, "minio")
    assert minio["MINIO_NOTIFY_WEBHOOK_ENDPOINT_MEDIASERVICE_UPLOADS"].startswith("http://media-service:8090/")
    text = (opslib.REPO / "docker-compose.yml").read_text()
    assert "${MEDIA_SERVICE_WEBHOOK_BASE:-http://media-service:8090}/webhooks/media-upload" in text
    assert "${MEDIA_SERVICE_WEBHOOK_BASE:-http://media-service:8090}/webhooks/file-ready" in text
    tasks = yaml.safe_load((opslib.REPO / "taskfiles" / "compose.yml").read_text())["tasks"]
    assert tasks["infra"]["env"]["MEDIA_SERVICE_WEBHOOK_BASE"] == f"http://host.docker.internal:{values['mediaService']['service']['port']}"
    assert values["mediaService"]["service"]["type"] == "LoadBalancer"
    assert "--profile services" in tasks["up"]["cmds"][0] and "--profile" not in tasks["infra"]["cmds"][0]


def test_compose_images_are_versions(compose_model: dict[str, Any]) -> None:
    for name, service in compose_model["services"].items():
        image = service.get("image")
        assert image, name
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag and tag != "latest", f"{name}: {image}"
        if name in SERVICES:
            assert tag == APP_VERSION, f"{name}: {image} (the chart's appVersion is {APP_VERSION})"


# ------------------------------------------------------------------------------------------
# CI, tasks and documentation

def test_chart_version_is_the_app_version() -> None:
    # CI tags the images of a release with the chart's version, the chart deploys its appVersion
    assert str(CHART_YAML["version"]) == APP_VERSION
    assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", APP_VERSION)


def test_ci_builds_every_image_tagged_with_the_chart_version() -> None:
    workflow = yaml.safe_load((opslib.REPO / ".github" / "workflows" / "ci.yml").read_text())
    jobs = workflow["jobs"]
    images = jobs["images"]
    matrix = {entry["image"]: entry for entry in images["strategy"]["matrix"]["include"]}
    assert set(matrix) == {"api-gateway", "message-consumer", "media-service", "pyflink"}
    assert matrix["pyflink"]["file"] == "docker/Dockerfile.pyflink"
    for service in SERVICES:
        assert matrix[service] == {"image": service, "file": "docker/Dockerfile", "target": service}
    steps = {step.get("id") or step.get("name"): step for step in images["steps"]}
    script = steps["tags"]["run"]
    assert "charts/event-substrate/Chart.yaml" in script and "$repository:$version" in script
    build = next(s for s in images["steps"] if str(s.get("uses", "")).startswith("docker/build-push-action"))
    assert build["with"]["tags"] == "${{ steps.tags.outputs.tags }}"
    assert build["with"]["file"] == "${{ matrix.file }}"
    text = (opslib.REPO / ".github" / "workflows" / "ci.yml").read_text()
    assert ":latest" not in text
    # the images job runs when the processors' image changes, and on release tags
    workflow_on = workflow.get("on") or workflow.get(True)
    assert "v*" in workflow_on["push"]["tags"]
    filters = yaml.safe_load(jobs["changes"]["steps"][1]["with"]["filters"])
    paths = {p for entry in filters["images"] for p in (entry if isinstance(entry, list) else [entry])}
    assert {"docker/Dockerfile.pyflink", "docker/Dockerfile.pyflink.dockerignore", "flink_jobs/**", "pyflink_jobs/**", "scripts/stack/pom.xml"} <= paths


def test_ci_processor_job_has_its_database() -> None:
    jobs = yaml.safe_load((opslib.REPO / ".github" / "workflows" / "ci.yml").read_text())["jobs"]
    processors = jobs["processors"]
    commands = "\n".join(step.get("run", "") for step in processors["steps"])
    has_service = any(s.get("image", "").startswith("postgres") for s in (processors.get("services") or {}).values())
    assert has_service or ("./taskw stack:up" in commands and "postgresql" in commands), \
        "the processor tests need PostgreSQL (a service container or the local stack)"
    assert "test:processors" in commands or "scripts/processors/test.sh" in commands


task_binary = opslib.task_binary


def test_prerequisites_task_installs_pinned_charts() -> None:
    import importlib.util

    taskfile = yaml.safe_load((opslib.REPO / "taskfiles" / "k8s.yml").read_text())
    pins = taskfile["vars"]
    for key in ("FLINK_OPERATOR_VERSION", "KEDA_VERSION"):
        assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", str(pins[key])), key
    result = opslib.run(task_binary(), "--dry", "k8s:prereqs")
    assert result.returncode == 0, result.stderr
    # task colours its lines when it thinks a terminal or CI is looking: compare the plain text
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr).splitlines()
    lines = [line.split("] ", 1)[1] for line in output if line.startswith("task: [k8s:prereqs]")]
    assert len(lines) == 2, output
    spec = importlib.util.spec_from_file_location("helm_ops", opslib.REPO / "scripts" / "ops" / "helm.py")
    helm_ops = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helm_ops)
    import shlex

    charts = {}
    for line in lines:
        argv = shlex.split(line)
        assert argv[:4] == ["bash", "scripts/ops/venv.sh", "python", "scripts/ops/helm.py"]
        args = helm_ops.parse_args(argv[4:])
        assert args.run is helm_ops.install_chart
        assert helm_ops.EXACT_VERSION.match(args.version)
        charts[args.chart] = args
    assert charts["flink-kubernetes-operator"].version == str(pins["FLINK_OPERATOR_VERSION"])
    assert charts["flink-kubernetes-operator"].repo.startswith("https://archive.apache.org/dist/flink/")
    assert charts["keda"].version == str(pins["KEDA_VERSION"])
    assert charts["keda"].repo == "https://kedacore.github.io/charts"


def readme_section(title: str) -> str:
    text = (opslib.REPO / "README.md").read_text()
    assert f"\n## {title}\n" in text, f"README has no '{title}' section"
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_readme_deploy_section_matches_the_chart() -> None:
    deploy = readme_section("Deploy")
    values = yaml.safe_load((opslib.CHART / "values.yaml").read_text())
    pins = yaml.safe_load((opslib.REPO / "taskfiles" / "k8s.yml").read_text())["vars"]
    # the steps, in order
    order = ["./taskw k8s:prereqs", "supabase db push", "kubectl create namespace",
             "create secret generic", "k8s:deploy -- -f charts/event-substrate/values-production.yaml", "readyz"]
    positions = [deploy.index(step) for step in order]
    assert positions == sorted(positions), order
    assert f"Operator {pins['FLINK_OPERATOR_VERSION']}" in deploy and f"KEDA {pins['KEDA_VERSION']}" in deploy
    # every Secret of the chart is created, with the keys the chart reads
    commands = re.findall(r"create secret generic ([a-z0-9.-]+)((?:[^\n]*\\\n)*[^\n]*)", deploy)
    created = {name: set(re.findall(r"--from-literal=([-._a-zA-Z0-9]+)=", rest)) for name, rest in commands}
    for concern, entry in values["secrets"].items():
        name = entry["existingSecret"]
        assert name in created, f"README does not create the {concern} Secret {name}"
        keys = {v for k, v in entry.items() if k.endswith("Key") or k == "key"}
        if concern == "kafka":
            keys = {"superuser", "api-gateway", "message-consumer", "media-service", "flink-processor"}
        assert keys <= created[name], (concern, keys - created[name])
    assert values["global"]["imagePullPolicy"] == "IfNotPresent"
    for pull_secret in opslib.load_values("production")["global"]["imagePullSecrets"]:
        assert f"create secret docker-registry {pull_secret}" in deploy
    # the bootstrap Job, the least-privilege Flink role and the topology rule are explained
    assert "event-substrate-bootstrap" in deploy and "flink_writer" in deploy
    assert "./taskw compose:infra" in deploy and "never run compose's `services` profile" in deploy.lower().replace("\n", " ")


def test_remote_database_deploys_never_push_the_seed() -> None:
    documents = [opslib.REPO / "README.md", opslib.REPO / "supabase" / "README.md",
                 *sorted((opslib.REPO / "docs").glob("*.md")), *sorted((opslib.REPO / "taskfiles").glob("*.yml")),
                 opslib.REPO / "Taskfile.yml"]
    for path in documents:
        for line in path.read_text().splitlines():
            if "db push" in line and "--include-seed" in line:
                assert "without" in line.lower() or "never" in line.lower(), f"{path.name}: {line.strip()}"
    assert "supabase db push --remote=" in readme_section("Deploy")


def test_readme_lists_the_renamed_uids_and_groups() -> None:
    deploy = readme_section("Deploy")
    table = deploy.split("### Renamed since the original platform", 1)[1]
    dashboards = {yaml.safe_load(p.read_text())["uid"]
                  for p in (opslib.REPO / "telemetry" / "grafana" / "dashboards").glob("*.json")}
    alerts = {rule["uid"] for group in yaml.safe_load(
        (opslib.REPO / "telemetry" / "grafana" / "provisioning" / "alerting" / "platform-alerts.yaml").read_text())["groups"]
        for rule in group["rules"]}
    for uid in (ORIGINAL_DASHBOARDS - dashboards) | (ORIGINAL_ALERTS - alerts):
        assert f"`{uid}`" in table, f"the original uid {uid} is gone without a note"
    for uid in (dashboards - ORIGINAL_DASHBOARDS) | (alerts - ORIGINAL_ALERTS):
        assert f"`{uid}`" in table, f"the new uid {uid} has no note"
    for group in ORIGINAL_GROUPS | {"media-service-delete-retry"}:
        assert f"`{group}`" in table, group
    assert "latest" in table.split("media-service-delete-retry", 1)[1].split("\n", 1)[0]
