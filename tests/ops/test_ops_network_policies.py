"""Network policies of the chart (issue #27, templates/network-policies.yaml): every pod the chart
makes is denied by default in both directions, the allow rules open exactly the ports of the
infrastructure each component uses (derived here independently from the values' addresses),
production values name the infrastructure's namespaces, the selectors match the labels the pods
really carry, and the policies can be turned off."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import opslib
import pytest

SERVICES = {"api-gateway": "apiGateway", "media-service": "mediaService", "message-consumer": "messageConsumer"}
FLINK_ROLES = ("jobmanager", "taskmanager")
# the namespaces values-production.yaml's addresses live in, per egress destination
PRODUCTION_NAMESPACES = {"kafka": "redpanda", "schemaRegistry": "redpanda", "postgres": "database",
                         "objectStore": "storage", "telemetry": "observability"}

Opening = tuple[str, int, str]  # (peer as canonical JSON, port, protocol)


# ------------------------------------------------------------------------------------------
# helpers

def merged_values(values_name: str, override: dict[str, Any] | None = None) -> dict[str, Any]:
    """values.yaml with the values file (and override) on top, as Helm coalesces them."""
    import helm_python as helm

    values = opslib.merge(opslib.load_values(values_name) or {}, override or {})
    with helm.Chart.load(opslib.CHART) as chart:
        return chart.merge_values(values)


def render(values_name: str, override: dict[str, Any]) -> list[dict[str, Any]]:
    return opslib.manifests(opslib.render_chart(opslib.merge(opslib.load_values(values_name) or {}, override)))


def policies(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}


def pods(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Pod name -> labels of every pod the chart makes: the Deployments' and the Job's from their
    templates; each FlinkDeployment's JobManager and TaskManager from its pod template plus the
    labels the operator (Flink's native Kubernetes mode) gives them: app (the cluster id, the
    FlinkDeployment's name), component and type."""
    found = {}
    for doc in docs:
        name = doc["metadata"]["name"]
        if doc["kind"] in {"Deployment", "Job"}:
            found[name] = doc["spec"]["template"]["metadata"]["labels"]
        elif doc["kind"] == "FlinkDeployment":
            template = doc["spec"]["podTemplate"]["metadata"]["labels"]
            # the operator's `app` must not contradict the template's (it wins on a conflict)
            assert template.get("app", name) == name, name
            for role in FLINK_ROLES:
                found[f"{name}/{role}"] = {**template, "app": name, "component": role,
                                           "type": "flink-native-kubernetes"}
    return found


def selects(policy: dict[str, Any], labels: dict[str, str]) -> bool:
    selector = policy["spec"]["podSelector"]
    assert not selector.get("matchExpressions"), policy["metadata"]["name"]
    match = selector.get("matchLabels") or {}
    assert match, f"{policy['metadata']['name']} selects every pod of the namespace"
    return all(labels.get(k) == v for k, v in match.items())


def selecting(docs: list[dict[str, Any]], labels: dict[str, str]) -> list[dict[str, Any]]:
    return [p for p in policies(docs).values() if selects(p, labels)]


def peer_key(peer: dict[str, Any]) -> str:
    return json.dumps(peer, sort_keys=True)


def opened(docs: list[dict[str, Any]], labels: dict[str, str], direction: str) -> set[Opening]:
    """What the policies selecting a pod open in one direction ("ingress" or "egress")."""
    field = "from" if direction == "ingress" else "to"
    openings: set[Opening] = set()
    for policy in selecting(docs, labels):
        for rule in policy["spec"].get(direction) or []:
            # a rule without peers or ports would open every address or every port
            assert rule.get(field), f"{policy['metadata']['name']}: a {direction} rule without peers"
            assert rule.get("ports"), f"{policy['metadata']['name']}: a {direction} rule without ports"
            for peer in rule[field]:
                for port in rule["ports"]:
                    openings.add((peer_key(peer), int(port["port"]), port.get("protocol", "TCP")))
    return openings


def tcp(peers: list[dict[str, Any]], *ports: int) -> set[Opening]:
    return {(peer_key(peer), int(port), "TCP") for peer in peers for port in ports}


def port_of(address: str, default: int) -> int:
    """The port of host:port or of a URL, computed without the chart's helper."""
    if "://" in address:
        parts = urlsplit(address)
        return parts.port or (443 if parts.scheme == "https" else 80)
    host, _, port = address.rpartition(":")
    return int(port) if host and port.isdigit() else default


def expected_egress(values: dict[str, Any], component: str) -> set[Opening]:
    """What a component must reach: DNS, then the destinations it uses, on the ports of the
    addresses of the infrastructure sections (or a destination's explicit `ports`)."""
    np = values["networkPolicy"]
    egress = np["egress"]
    wanted = {(peer_key(p), 53, proto) for p in np["dns"]["to"] for proto in ("UDP", "TCP")}

    def add(target: str, *ports: int) -> None:
        wanted.update(tcp(egress[target]["to"], *(egress[target].get("ports") or ports)))

    brokers = [port_of(b.strip(), 9092) for b in values["kafka"]["brokers"].split(",")]
    registry = port_of(values["schemaRegistry"]["url"], 80)
    object_store = port_of(values["objectStore"]["endpoint"], 443 if values["objectStore"]["useSsl"] else 80)
    postgres = int(values["postgres"]["port"])
    otlp = values["telemetry"]["otlpEndpoint"]
    if component == "bootstrap":
        add("kafka", *brokers, port_of(values["kafka"]["adminApi"], 9644))
        add("schemaRegistry", registry)
        return wanted
    add("kafka", *brokers)
    add("schemaRegistry", registry)
    if component in SERVICES:
        add("postgres", postgres)
        if otlp:
            add("telemetry", port_of(otlp, 4317))
        if component in {"api-gateway", "media-service"}:
            add("objectStore", object_store)
        if component == "api-gateway" and values["apiGateway"]["auth"]["jwksUrl"]:
            add("jwks", port_of(values["apiGateway"]["auth"]["jwksUrl"], 443))
        return wanted
    # a FlinkDeployment: checkpoints, the database if the job writes it, the Kubernetes API,
    # and its own pods' RPC, blob and data ports
    name = component
    add("objectStore", object_store)
    if values["flink"]["jobs"][name]["postgres"]:
        add("postgres", postgres)
    add("kubernetesApi")
    ports = values["flink"]["ports"]
    wanted |= tcp([{"podSelector": {"matchLabels": {"app": name}}}], ports["jobManagerRpc"],
                  ports["blobServer"], ports["taskManagerRpc"], ports["taskManagerData"])
    return wanted


def flink_jobs(values: dict[str, Any]) -> list[str]:
    return sorted(n for n, job in values["flink"]["jobs"].items() if job["enabled"])


# ------------------------------------------------------------------------------------------
# default deny and selectors

def test_every_pod_is_denied_by_default_in_both_directions(rendered: list[dict[str, Any]], values_name: str) -> None:
    values = merged_values(values_name)
    found = pods(rendered)
    expected = {*SERVICES, "event-substrate-bootstrap",
                *(f"{n}/{r}" for n in flink_jobs(values) for r in FLINK_ROLES)}
    assert set(found) == expected
    for pod, labels in found.items():
        deny = [p for p in selecting(rendered, labels)
                if set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
                and not p["spec"].get("ingress") and not p["spec"].get("egress")]
        assert len(deny) == 1, f"{pod}: no default-deny policy (or several)"
        assert deny[0]["metadata"]["name"].endswith("-deny-all")
        # every policy selecting the pod governs both directions, so none of them is open by omission
        for policy in selecting(rendered, labels):
            assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}, policy["metadata"]["name"]


def test_policy_selectors_match_the_pods_they_are_for(rendered: list[dict[str, Any]]) -> None:
    found = pods(rendered)
    for name, policy in policies(rendered).items():
        matched = [pod for pod, labels in found.items() if selects(policy, labels)]
        assert matched, f"{name} selects no pod the chart makes"
        # a policy is about one component: one Deployment, the Job, or one FlinkDeployment's pods
        assert len({pod.split("/")[0] for pod in matched}) == 1, (name, matched)
    deployments = {d["metadata"]["name"]: d for d in rendered if d["kind"] == "Deployment"}
    for service in SERVICES:
        deny = policies(rendered)[f"{service}-deny-all"]["spec"]["podSelector"]["matchLabels"]
        # the policy selects exactly the pods the Deployment (and its Service) select
        assert deny == deployments[service]["spec"]["selector"]["matchLabels"]
        assert deny.items() <= deployments[service]["spec"]["template"]["metadata"]["labels"].items()
    for doc in rendered:
        if doc["kind"] == "FlinkDeployment":
            name = doc["metadata"]["name"]
            for role in FLINK_ROLES:
                selector = policies(rendered)[f"{name}-{role}-allow"]["spec"]["podSelector"]["matchLabels"]
                assert selector == {"app": name, "component": role}
                assert [p for p in found if selects(policies(rendered)[f"{name}-{role}-allow"], found[p])] == [f"{name}/{role}"]


# ------------------------------------------------------------------------------------------
# allow rules

def test_api_gateway_ingress(rendered: list[dict[str, Any]], values_name: str) -> None:
    values = merged_values(values_name)
    gateway = values["apiGateway"]
    np = gateway["networkPolicy"]
    port = gateway["port"]
    expected = tcp(np["ingressControllerFrom"], port) | tcp(np["allowFrom"], port) \
        | tcp(values["networkPolicy"]["metrics"]["from"], port)
    assert gateway["service"]["type"] == "LoadBalancer"
    expected |= tcp([{"ipBlock": {"cidr": c}} for c in np["loadBalancerCidrs"]], port)
    assert opened(rendered, pods(rendered)["api-gateway"], "ingress") == expected
    # the ingress controller's namespace is the default (documented in values.yaml)
    assert np["ingressControllerFrom"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}]
    assert np["loadBalancerCidrs"], "a LoadBalancer gateway admits its clients"


def test_api_gateway_behind_the_ingress_controller_only(values_name: str) -> None:
    docs = render(values_name, {"apiGateway": {"service": {"type": "ClusterIP"},
                                               "networkPolicy": {"allowFrom": []}}})
    values = merged_values(values_name)
    port = values["apiGateway"]["port"]
    # ClusterIP: the LoadBalancer ranges are not rendered
    assert opened(docs, pods(docs)["api-gateway"], "ingress") == \
        tcp(values["apiGateway"]["networkPolicy"]["ingressControllerFrom"], port) \
        | tcp(values["networkPolicy"]["metrics"]["from"], port)


def test_media_service_webhooks_only_from_the_object_store(rendered: list[dict[str, Any]], values_name: str) -> None:
    values = merged_values(values_name)
    media = values["mediaService"]
    assert media["networkPolicy"]["enabled"] is True and media["networkPolicy"]["allowFrom"]
    assert opened(rendered, pods(rendered)["media-service"], "ingress") == \
        tcp(media["networkPolicy"]["allowFrom"], media["port"]) \
        | tcp(values["networkPolicy"]["metrics"]["from"], media["port"])
    if values_name == "production":
        assert media["networkPolicy"]["allowFrom"] == [{
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "storage"}},
            "podSelector": {"matchLabels": {"app": "minio"}}}]


def test_message_consumer_admits_metrics_only(rendered: list[dict[str, Any]], values_name: str) -> None:
    values = merged_values(values_name)
    assert opened(rendered, pods(rendered)["message-consumer"], "ingress") == \
        tcp(values["networkPolicy"]["metrics"]["from"], values["messageConsumer"]["port"])


def test_flink_rest_from_the_operator_and_rpc_among_its_own_pods(rendered: list[dict[str, Any]], values_name: str) -> None:
    values = merged_values(values_name)
    flink = values["flink"]
    ports = flink["ports"]
    metrics = tcp(values["networkPolicy"]["metrics"]["from"], flink["metrics"]["prometheusPort"])
    operator = flink["networkPolicy"]["operatorFrom"]
    assert operator == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "flink-operator"}}}]
    found = pods(rendered)
    deployments = {d["metadata"]["name"]: d for d in rendered if d["kind"] == "FlinkDeployment"}
    for name in flink_jobs(values):
        own = [{"podSelector": {"matchLabels": {"app": name}}}]
        assert opened(rendered, found[f"{name}/jobmanager"], "ingress") == \
            tcp(operator, ports["rest"]) | tcp(own, ports["jobManagerRpc"], ports["blobServer"]) | metrics
        assert opened(rendered, found[f"{name}/taskmanager"], "ingress") == \
            tcp(own, ports["taskManagerRpc"], ports["taskManagerData"]) | metrics
        # the processes listen on exactly the ports the policies open
        conf = deployments[name]["spec"]["flinkConfiguration"]
        assert {k: int(conf[k]) for k in ("rest.port", "jobmanager.rpc.port", "blob.server.port",
                                          "taskmanager.rpc.port", "taskmanager.data.port")} == {
            "rest.port": ports["rest"], "jobmanager.rpc.port": ports["jobManagerRpc"],
            "blob.server.port": ports["blobServer"], "taskmanager.rpc.port": ports["taskManagerRpc"],
            "taskmanager.data.port": ports["taskManagerData"]}
        assert int(conf["metrics.reporter.prom.port"]) == flink["metrics"]["prometheusPort"]


def test_egress_only_to_what_each_component_uses(rendered: list[dict[str, Any]], values_name: str) -> None:
    values = merged_values(values_name)
    found = pods(rendered)
    for component in SERVICES:
        assert opened(rendered, found[component], "egress") == expected_egress(values, component), component
    assert opened(rendered, found["event-substrate-bootstrap"], "egress") == expected_egress(values, "bootstrap")
    for name in flink_jobs(values):
        for role in FLINK_ROLES:
            assert opened(rendered, found[f"{name}/{role}"], "egress") == expected_egress(values, name), (name, role)
    # the consumer never reaches the object store, the bootstrap Job never the database
    store = {o for o in expected_egress(values, "media-service") if o[1] == port_of(values["objectStore"]["endpoint"], 443)}
    assert not store & opened(rendered, found["message-consumer"], "egress")
    assert not any(o[1] == int(values["postgres"]["port"]) for o in opened(rendered, found["event-substrate-bootstrap"], "egress"))


def test_production_values_name_the_infrastructure_namespaces() -> None:
    rendered = render("production", {})
    values = merged_values("production")
    egress = values["networkPolicy"]["egress"]
    addresses = {"kafka": values["kafka"]["brokers"].split(",")[0], "schemaRegistry": values["schemaRegistry"]["url"],
                 "postgres": values["postgres"]["host"], "objectStore": values["objectStore"]["endpoint"],
                 "telemetry": values["telemetry"]["otlpEndpoint"]}
    for target, namespace in PRODUCTION_NAMESPACES.items():
        # the address is <...>.<namespace>.svc.cluster.local, and the peers are that namespace
        host = urlsplit(addresses[target]).hostname if "://" in addresses[target] else addresses[target].split(":")[0]
        labels = host.split(".")
        assert labels[-3:] == ["svc", "cluster", "local"] and labels[-4] == namespace, (target, host)
        (peer,) = egress[target]["to"]
        assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": namespace}}, target
    assert values["networkPolicy"]["metrics"]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}]
    # the rendered policies carry them
    text = json.dumps([p["spec"] for p in policies(rendered).values()])
    for namespace in {*PRODUCTION_NAMESPACES.values(), "flink-operator", "kube-system"}:
        assert f'"kubernetes.io/metadata.name": "{namespace}"' in text, namespace
    # the database's auth triggers reach the gateway from the cluster
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "database"}}} in \
        values["apiGateway"]["networkPolicy"]["allowFrom"]


def test_bootstrap_policies_exist_before_the_job_runs(rendered: list[dict[str, Any]]) -> None:
    (job,) = [d for d in rendered if d["kind"] == "Job"]
    job_annotations = job["metadata"]["annotations"]
    for name in ("event-substrate-bootstrap-deny-all", "event-substrate-bootstrap-allow"):
        annotations = policies(rendered)[name]["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == job_annotations["helm.sh/hook"]
        assert int(annotations["helm.sh/hook-weight"]) < int(job_annotations["helm.sh/hook-weight"])
        # removed with the Job once every hook succeeded (Helm deletes them after the last hook)
        assert set(annotations["helm.sh/hook-delete-policy"].split(",")) == {"before-hook-creation", "hook-succeeded"}
    for policy in policies(rendered).values():
        if "bootstrap" not in policy["metadata"]["name"]:
            assert "helm.sh/hook" not in (policy["metadata"].get("annotations") or {})


# ------------------------------------------------------------------------------------------
# switches

def test_the_global_switch_turns_every_policy_off(values_name: str) -> None:
    docs = render(values_name, {"networkPolicy": {"enabled": False}})
    assert not policies(docs)
    # the old per-service switch alone does not bring one back
    docs = render(values_name, {"networkPolicy": {"enabled": False}, "mediaService": {"networkPolicy": {"enabled": True}}})
    assert not policies(docs)


@pytest.mark.parametrize("component,key,prefixes", [
    ("api-gateway", "apiGateway", ("api-gateway-",)),
    ("media-service", "mediaService", ("media-service-",)),
    ("message-consumer", "messageConsumer", ("message-consumer-",)),
    ("bootstrap", "bootstrap", ("event-substrate-bootstrap-",)),
    ("flink", "flink", ("login-events-processor-", "credit-check-processor-", "ttl-expiry-processor-",
                        "move-saga-processor-", "pyflink-echo-job-")),
])
def test_a_component_can_opt_out(component: str, key: str, prefixes: tuple[str, ...]) -> None:
    everything = set(policies(render("default", {})))
    for override in ({key: {"networkPolicy": {"enabled": False}}}, {key: {"enabled": False}}):
        left = set(policies(render("default", override)))
        gone = everything - left
        assert gone and all(name.startswith(prefixes) for name in gone), (override, gone)
        assert not any(name.startswith(prefixes) for name in left), (override, left)


def test_empty_peers_open_nothing() -> None:
    docs = render("production", {
        "mediaService": {"networkPolicy": {"allowFrom": []}},
        "apiGateway": {"networkPolicy": {"ingressControllerFrom": [], "allowFrom": [], "loadBalancerCidrs": []}},
        "networkPolicy": {"metrics": {"from": []}, "egress": {"jwks": {"to": []}}},
    })
    found = pods(docs)
    # an empty `from`/`to` would mean every address: no rule is rendered instead
    assert opened(docs, found["media-service"], "ingress") == set()
    assert opened(docs, found["api-gateway"], "ingress") == set()
    values = merged_values("production")
    assert not any(o[1] == 443 and "ipBlock" in o[0] for o in opened(docs, found["api-gateway"], "egress"))
    assert opened(docs, found["api-gateway"], "egress") < expected_egress(values, "api-gateway")


def test_explicit_ports_replace_the_derived_ones() -> None:
    docs = render("default", {"networkPolicy": {"egress": {"postgres": {"ports": [6543]}}}})
    values = merged_values("default", {"networkPolicy": {"egress": {"postgres": {"ports": [6543]}}}})
    egress = opened(docs, pods(docs)["message-consumer"], "egress")
    assert egress == expected_egress(values, "message-consumer")
    assert {o[1] for o in egress} >= {6543} and int(values["postgres"]["port"]) not in {o[1] for o in egress}


def test_values_schema_rejects_malformed_peers() -> None:
    import helm_python as helm

    with helm.Chart.load(opslib.CHART) as chart:
        for bad in (
            {"networkPolicy": {"enabled": "yes"}},
            {"networkPolicy": {"dns": {"to": [{"podSelecter": {"matchLabels": {"k8s-app": "kube-dns"}}}]}}},
            {"networkPolicy": {"egress": {"kafka": {"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}], "ports": [0]}}}},
            {"networkPolicy": {"egress": {"brokers": {"to": []}}}},
            {"mediaService": {"networkPolicy": {"allowFrom": [{}]}}},
            {"apiGateway": {"networkPolicy": {"loadBalancerCidrs": ["everyone"]}}},
            {"flink": {"ports": {"rest": 70000}}},
        ):
            with pytest.raises(helm.HelmError):
                chart.validate_schema(bad)
