"""One set of versions for the stream processors: scripts/stack/pom.xml (the connector jars of
the local stack and the tests), pyproject.toml (PyPI apache-flink, the runtime the tests use)
and docker/Dockerfile.pyflink (the production image) must name the same Flink and connectors."""

from __future__ import annotations

import re
import tomllib
import xml.etree.ElementTree as ET

import opslib

POM = opslib.REPO / "scripts" / "stack" / "pom.xml"
PYPROJECT = opslib.REPO / "pyproject.toml"
DOCKERFILE = opslib.REPO / "docker" / "Dockerfile.pyflink"
# BuildKit reads the ignore file named after the Dockerfile, next to it
DOCKERIGNORE = DOCKERFILE.with_name(DOCKERFILE.name + ".dockerignore")
NS = {"m": "http://maven.apache.org/POM/4.0.0"}

CONNECTORS = {
    "flink-sql-connector-kafka", "flink-sql-avro-confluent-registry",
    "flink-connector-jdbc-core", "flink-connector-jdbc-postgres", "postgresql",
}


def pom_properties() -> dict[str, str]:
    root = ET.parse(POM).getroot()
    return {child.tag.split("}", 1)[1]: (child.text or "").strip()
            for child in root.find("m:properties", NS)}


def resolve(value: str, properties: dict[str, str]) -> str:
    """${name} references expanded (Maven property interpolation, recursively)."""
    for _ in range(10):
        expanded = re.sub(r"\$\{([\w.-]+)\}", lambda m: properties[m.group(1)], value)
        if expanded == value:
            return value
        value = expanded
    raise AssertionError(f"property cycle in {value}")


def connector_versions() -> dict[str, str]:
    """artifactId -> resolved version of the pom's flink-connectors execution."""
    properties = pom_properties()
    root = ET.parse(POM).getroot()
    for execution in root.iterfind(".//m:plugin/m:executions/m:execution", NS):
        if execution.findtext("m:id", namespaces=NS) != "flink-connectors":
            continue
        assert execution.findtext("m:goals/m:goal", namespaces=NS) == "copy"
        assert execution.findtext("m:configuration/m:outputDirectory", namespaces=NS) == "${jars.dir}/flink"
        return {
            item.findtext("m:artifactId", namespaces=NS):
                resolve(item.findtext("m:version", namespaces=NS), properties)
            for item in execution.iterfind("m:configuration/m:artifactItems/m:artifactItem", NS)
        }
    raise AssertionError("the pom has no flink-connectors execution")


def pyproject_pin(name: str) -> str:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    for requirement in dependencies:
        match = re.fullmatch(rf"{re.escape(name)}(\[[\w,]+\])?==([\w.]+)", requirement)
        if match:
            return match.group(2)
    raise AssertionError(f"pyproject.toml does not pin {name} exactly")


def dockerfile_args() -> dict[str, list[str]]:
    """Every default of every ARG (an ARG may be declared before FROM and again in a stage)."""
    found: dict[str, list[str]] = {}
    for name, default in re.findall(r"^ARG\s+(\w+)(?:=(\S+))?\s*$", DOCKERFILE.read_text(), re.M):
        if default:
            found.setdefault(name, []).append(default)
    return found


def test_connectors_are_built_for_the_pinned_flink_minor() -> None:
    flink = pom_properties()["flink.version"]
    minor = ".".join(flink.split(".")[:2])
    versions = connector_versions()
    assert set(versions) == CONNECTORS
    # externalised connectors carry the Flink minor they are built for as a suffix
    for artifact in ("flink-sql-connector-kafka", "flink-connector-jdbc-core", "flink-connector-jdbc-postgres"):
        assert versions[artifact].endswith(f"-{minor}"), (artifact, versions[artifact], flink)
    # the format is released with Flink itself
    assert versions["flink-sql-avro-confluent-registry"] == flink


def test_pyproject_pins_the_pom_flink_version() -> None:
    assert pyproject_pin("apache-flink") == pom_properties()["flink.version"]


def test_dockerfile_uses_the_pom_and_pyproject_versions() -> None:
    args = dockerfile_args()
    assert set(args["FLINK_VERSION"]) == {pom_properties()["flink.version"]}
    assert set(args["PSYCOPG_VERSION"]) == {pyproject_pin("psycopg")}
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM flink:\$\{FLINK_VERSION\}-java17$", text, re.M)
    assert '"apache-flink==${FLINK_VERSION}"' in text
    # the connector jars come from the pom itself, never from versions written here
    assert "COPY scripts/stack/pom.xml pom.xml" in text
    assert "dependency:copy@flink-connectors" in text
    assert re.search(r"^COPY --from=connectors .*/jars/flink/ /opt/flink/usrlib/$", text, re.M)
    assert not re.search(r"\d+\.\d+\.\d+-\d+\.\d+", text), "connector versions belong in the pom"
    assert "!scripts/stack/pom.xml" in DOCKERIGNORE.read_text().splitlines()
