"""The task catalogue (Taskfile.yml + taskfiles/): go-task loads it, every task is documented,
and the task names that the README, CI and the scripts call exist."""

from __future__ import annotations

import json

import opslib

# Called by README.md, .ci/run, .github/workflows/ci.yml and the scripts' messages.
REQUIRED = {
    "default", "setup", "up", "down", "status", "test", "bench", "chaos", "fmt", "lint",
    "stack:up", "stack:down", "stack:status", "stack:logs",
    "services:up", "services:down", "services:restart",
    "trace:up", "trace:down", "trace:status", "trace:show",
    "test:rust", "test:python", "test:processors", "test:chaos", "ops:lint",
    "rust:build", "rust:clippy", "rust:fmt", "rust:test",
    "db:apply", "db:reset", "schemas:register", "topics:list",
    "images:build", "compose:up", "compose:infra", "compose:down", "compose:config",
    "helm:lint", "helm:template", "k8s:prereqs", "k8s:deploy", "flink:test", "clickhouse:test",
}


task_binary = opslib.task_binary


def test_every_task_is_listed_with_a_description() -> None:
    result = opslib.run(task_binary(), "--list-all", "--json")
    assert result.returncode == 0, result.stderr
    tasks = {t["name"]: t["desc"] for t in json.loads(result.stdout)["tasks"]}
    undocumented = sorted(name for name, desc in tasks.items() if not desc.strip())
    assert not undocumented, f"tasks without desc (hidden from ./taskw --list): {undocumented}"
    missing = sorted(REQUIRED - set(tasks))
    assert not missing, f"tasks that README/CI/scripts call are gone: {missing}"
    opslib.REPORT.setdefault("task catalogue (./taskw --list)", []).append(
        f"{len(tasks)} tasks, all with a description"
    )


def test_included_taskfiles_are_all_included() -> None:
    import yaml

    root = yaml.safe_load((opslib.REPO / "Taskfile.yml").read_text())
    included = set()
    for spec in root["includes"].values():
        path = spec if isinstance(spec, str) else spec["taskfile"]
        included.add((opslib.REPO / path).resolve())
    on_disk = {p.resolve() for p in (opslib.REPO / "taskfiles").glob("*.yml")}
    assert on_disk == included, f"taskfiles/ not included by Taskfile.yml: {sorted(map(str, on_disk - included))}"
