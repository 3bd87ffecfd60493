"""Helpers of the deployment checks: repository paths, tool runs, chart rendering, PromQL."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "event-substrate"
VALUES_FILES = {"default": None, "production": CHART / "values-production.yaml"}
RELEASE = "event-substrate"
NAMESPACE = "event-substrate"
# The Kubernetes version the manifests are validated against (the chart's kubeVersion floor
# is 1.27; validate against a current release).
KUBERNETES_VERSION = "1.30.0"

SKIPPED_DIRS = {".git", "target", "node_modules", ".local", "__pycache__", ".pytest_cache", ".ruff_cache"}


def repo_files(*suffixes: str) -> list[Path]:
    """Files of the work tree with one of the suffixes, outside virtualenvs and build output."""
    found = []
    for root, dirs, files in os.walk(REPO):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith(".venv"))
        for name in sorted(files):
            if name.endswith(suffixes):
                found.append(Path(root) / name)
    return found


def shell_scripts() -> list[Path]:
    """Every shell script: *.sh files and files whose first line names sh or bash."""
    scripts = []
    for path in repo_files(""):
        if path.suffix == ".sh":
            scripts.append(path)
            continue
        if path.suffix or not os.access(path, os.X_OK):
            continue
        try:
            first = path.open("rb").readline(200)
        except OSError:
            continue
        if re.match(rb"#!\s*\S*(/env\s+)?\S*\b(ba)?sh\b", first):
            scripts.append(path)
    return scripts


def tool(name: str) -> str:
    """Absolute path of a linter binary (installed into .venv-ops by scripts/ops/lint.sh)."""
    found = shutil.which(name)
    if not found:
        raise AssertionError(f"{name} is not on PATH: run the checks through scripts/ops/lint.sh")
    return found


def run(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def load_values(name: str) -> dict[str, Any] | None:
    path = VALUES_FILES[name]
    return None if path is None else yaml.safe_load(path.read_text())


def render_chart(values: dict[str, Any] | None) -> dict[str, str]:
    """Template path -> rendered text (helm template, offline, through the Helm SDK)."""
    import helm_python as helm

    with helm.Chart.load(CHART) as chart:
        if values is not None:
            chart.validate_schema(values)
        return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def manifests(rendered: dict[str, str]) -> list[dict[str, Any]]:
    docs = []
    for path, text in sorted(rendered.items()):
        if not path.endswith((".yaml", ".yml")):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc.setdefault("__template__", path)
                docs.append(doc)
    return docs


def strip_private(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if not k.startswith("__")}


def containers(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = doc["spec"]["template"]["spec"]
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


# ------------------------------------------------------------------------------------------
# PromQL: metric names and label matchers of an expression

PROMQL_KEYWORDS = {
    # aggregations and their modifiers
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
    "topk", "quantile", "limitk", "limit_ratio", "by", "without", "on", "ignoring", "group_left",
    "group_right", "bool", "and", "or", "unless", "offset", "atan2",
    # time units that could look like identifiers in durations are handled by the regex
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{([^{}]*)\}")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_IDENT = re.compile(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])")
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*")\s*')


def promql_metrics(expr: str) -> dict[str, set[str]]:
    """Metric names referenced by a PromQL expression, each with the label names it filters on."""
    metrics: dict[str, set[str]] = {}
    # vector selectors with matchers: name{...}
    for match in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^{}]*)\}", expr):
        labels = {m.group(1) for m in _MATCHER.finditer(match.group(2))}
        metrics.setdefault(match.group(1), set()).update(labels)
    # bare selectors: identifiers that are not functions, keywords, grouping labels or strings
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("{}", text)
    text = _GROUPING.sub(lambda m: m.group(1) + "()", text)
    text = re.sub(r"\[[^\]]*\]", "[]", text)  # range and subquery durations
    for match in _IDENT.finditer(text):
        name = match.group(1)
        rest = text[match.end():].lstrip()
        if name in PROMQL_KEYWORDS or rest.startswith("("):
            continue
        if re.fullmatch(r"\d+[smhdwy]", name) or name in {"inf", "nan", "Inf", "NaN"}:
            continue
        metrics.setdefault(name, set())
    return metrics


#: Report sections printed at the end of the run (conftest.pytest_terminal_summary).
REPORT: dict[str, list[str]] = {}


def task_binary() -> str:
    """go-task from .venv (./taskw installs it) or PATH; the suite may run without either."""
    import pytest

    local = REPO / ".venv" / "bin" / "task"
    found = str(local) if local.exists() else shutil.which("task")
    if not found:
        pytest.skip("go-task is not installed (./taskw installs it into .venv)")
    return found


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`base` with `override` laid over it, recursively for mappings (as Helm merges values);
    neither argument is changed."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
