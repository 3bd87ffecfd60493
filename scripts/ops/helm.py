#!/usr/bin/env python3
"""Helm operations on charts/event-substrate through the Helm SDK (PyPI helm-python-sdk, in
.venv-ops): no helm binary is needed. Run it through scripts/ops/venv.sh, which provides the
SDK, or through the tasks (./taskw helm:lint, helm:template, k8s:deploy, k8s:uninstall,
k8s:status).

  lint      [-f VALUES]... [--set K=V]...   helm lint --strict; without -f/--set the chart is
                                            linted twice, with values.yaml alone and with
                                            values-production.yaml on top (as tests/ops does)
  template  [-f VALUES]... [--set K=V]... [--output-dir DIR]
                                            the rendered manifests, one `# Source:` document
                                            each, on stdout (or one file per template in DIR)
  deploy    [-f VALUES]... [--set K=V]... [--dry-run] [--wait]
                                            helm upgrade --install; needs a reachable cluster
                                            (KUBECONFIG or ~/.kube/config)
  uninstall                                 helm uninstall (a missing release is not an error)
  status                                    the release's revision and state
  install-chart --release R --namespace N --repo URL --chart NAME --version X.Y.Z
                [-f VALUES]... [--set K=V]... [--dry-run]
                                            helm upgrade --install of a chart from a repository
                                            at an exact version (the chart's prerequisites,
                                            ./taskw k8s:prereqs); waits for its resources

Release and namespace: --release / --namespace, default $HELM_RELEASE / $HELM_NAMESPACE, else
event-substrate for both. Values files are merged in order, then --set expressions (helm's
--set syntax), like helm does.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "event-substrate"
PRODUCTION_VALUES = CHART / "values-production.yaml"
DEFAULT_NAME = "event-substrate"
SEVERITY = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}


class HelmTaskError(Exception):
    """A failure reported to the operator without a traceback."""


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of user values: maps merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def user_values(files: list[Path], sets: list[str]) -> dict[str, Any] | None:
    """The values given on the command line, or None when there are none (chart defaults)."""
    if not files and not sets:
        return None
    values: dict[str, Any] = {}
    for path in files:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as error:
            raise HelmTaskError(f"cannot read values file {path}: {error}") from error
        if not isinstance(loaded, dict):
            raise HelmTaskError(f"values file {path} is not a YAML mapping")
        values = merge(values, loaded)
    for expression in sets:
        try:
            values = merge(values, helm.parse_set_string(expression))
        except helm.HelmError as error:
            raise HelmTaskError(f"--set {expression}: {error}") from error
    return values


def describe(files: list[Path], sets: list[str]) -> str:
    parts = ["values.yaml"] + [os.path.relpath(p, REPO_ROOT) for p in files]
    parts += [f"--set {s}" for s in sets]
    return " + ".join(parts)


def lint(args: argparse.Namespace) -> None:
    if args.values or args.set:
        runs = [(args.values, args.set)]
    else:
        runs = [([], []), ([PRODUCTION_VALUES], [])]
    failed = False
    for files, sets in runs:
        report = helm.lint(CHART, user_values(files, sets), strict=True, namespace=args.namespace)
        label = describe(files, sets)
        problems = [m for m in report.get("messages") or [] if m.get("severity", 0) >= 2]
        for message in report.get("messages") or []:
            severity = SEVERITY.get(message.get("severity", 0), "UNKNOWN")
            print(f"[{severity}] {message.get('path', '')}: {message.get('error', '')}")
        for error in report.get("errors") or []:
            print(f"[ERROR] {error}")
        if problems or report.get("errors"):
            failed = True
            print(f"helm lint --strict ({label}): FAILED")
        else:
            print(f"helm lint --strict ({label}): ok")
    if failed:
        raise HelmTaskError("the chart has lint warnings or errors (strict: warnings count)")


def render(args: argparse.Namespace) -> dict[str, str]:
    values = user_values(args.values, args.set)
    with helm.Chart.load(CHART) as chart:
        if values is not None:
            chart.validate_schema(values)
        return chart.render(values, name=args.release, namespace=args.namespace, is_install=True)


def template(args: argparse.Namespace) -> None:
    rendered = {
        path: text
        for path, text in sorted(render(args).items())
        if path.endswith((".yaml", ".yml")) and text.strip()
    }
    if args.output_dir is None:
        for path, text in rendered.items():
            sys.stdout.write(f"---\n# Source: {path}\n{text.strip()}\n")
        return
    for path, text in rendered.items():
        target = args.output_dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"---\n# Source: {path}\n{text.strip()}\n", encoding="utf-8")
        print(f"wrote {target}")


def kubeconfig_present() -> bool:
    """Whether helm has any cluster to talk to. Without a kubeconfig the Kubernetes client falls
    back to http://localhost:8080, which is the api-gateway's port on a development machine."""
    paths = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    if paths:
        return any(Path(p).expanduser().is_file() for p in paths)
    return (Path.home() / ".kube" / "config").is_file() or "KUBERNETES_SERVICE_HOST" in os.environ


def cluster(args: argparse.Namespace) -> helm.Config:
    if not kubeconfig_present():
        raise HelmTaskError(
            "no Kubernetes cluster configured (no KUBECONFIG, no ~/.kube/config, not in a pod); "
            "k8s:* tasks need a cluster; the offline chart checks are ./taskw helm:lint / helm:template"
        )
    config: helm.Config | None = None
    try:
        config = helm.Config(namespace=args.namespace)
        config.check_reachable()
    except helm.HelmError as error:
        if config is not None:
            config.close()
        where = os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise HelmTaskError(
            f"no reachable Kubernetes cluster (kubeconfig: {where}): {error}\n"
            "k8s:* tasks need a cluster; the offline chart checks are ./taskw helm:lint / helm:template"
        ) from error
    return config


def summary(release: dict[str, Any]) -> str:
    info = release.get("info") or {}
    return (
        f"release {release.get('name')} in namespace {release.get('namespace')}: "
        f"revision {release.get('version')}, {info.get('status', 'unknown status')}"
    )


def deploy(args: argparse.Namespace) -> None:
    values = user_values(args.values, args.set)
    dry_run = "client" if args.dry_run else None
    wait = "watcher" if args.wait else None
    # Helm always waits for hook Jobs (the bootstrap Job runs before every install and upgrade),
    # so the timeout bounds those even without --wait.
    timeout = 600
    with cluster(args) as config, helm.Chart.load(CHART) as chart:
        if values is not None:
            chart.validate_schema(values)
        try:
            try:
                release = config.upgrade(chart, args.release, values, namespace=args.namespace,
                                         dry_run=dry_run, wait=wait, timeout=timeout)
                action = "upgraded"
            except helm.HelmNotFoundError:
                release = config.install(chart, args.release, values, namespace=args.namespace,
                                         create_namespace=True, dry_run=dry_run, wait=wait,
                                         timeout=timeout)
                action = "installed"
        except helm.HelmError as error:
            raise HelmTaskError(
                f"helm upgrade --install {args.release} failed: {error}\n"
                "The chart needs the Flink Kubernetes Operator and KEDA CRDs (or "
                "--set flink.enabled=false --set messageConsumer.keda.enabled=false), and the "
                "Secrets it references (see charts/event-substrate/templates/NOTES.txt)."
            ) from error
    print(("dry run: " if args.dry_run else "") + f"{action} {summary(release)}")
    notes = (release.get("info") or {}).get("notes")
    if notes:
        print(notes.rstrip())


EXACT_VERSION = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+$")


def install_chart(args: argparse.Namespace) -> None:
    """helm upgrade --install of a remote chart at a pinned version (no `helm repo add`: the
    repository is named on each call, so nothing depends on a local repository list)."""
    if not EXACT_VERSION.match(args.version):
        raise HelmTaskError(f"--version {args.version}: give an exact X.Y.Z version, never a range or latest")
    values = user_values(args.values, args.set)
    dry_run = "client" if args.dry_run else None
    where = f"{args.chart} {args.version} from {args.repo}"
    with cluster(args) as config:
        try:
            try:
                release = config.upgrade(args.chart, args.release, values, namespace=args.namespace,
                                         chart_repo_url=args.repo, chart_version=args.version,
                                         dry_run=dry_run, wait="watcher", timeout=600)
                action = "upgraded"
            except helm.HelmNotFoundError:
                release = config.install(args.chart, args.release, values, namespace=args.namespace,
                                         chart_repo_url=args.repo, chart_version=args.version,
                                         create_namespace=True, dry_run=dry_run, wait="watcher",
                                         timeout=600)
                action = "installed"
        except helm.HelmError as error:
            raise HelmTaskError(f"helm upgrade --install {args.release} ({where}) failed: {error}") from error
    print(("dry run: " if args.dry_run else "") + f"{action} {where}: {summary(release)}")


def uninstall(args: argparse.Namespace) -> None:
    with cluster(args) as config:
        config.uninstall(args.release, ignore_not_found=True)
    print(f"uninstalled release {args.release} from namespace {args.namespace} (if it existed)")


def status(args: argparse.Namespace) -> None:
    with cluster(args) as config:
        try:
            print(summary(config.status(args.release)))
        except helm.HelmNotFoundError as error:
            raise HelmTaskError(f"release {args.release} is not installed in {args.namespace}") from error


def parse_args(argv: list[str]) -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--release", default=os.environ.get("HELM_RELEASE") or DEFAULT_NAME)
    common.add_argument("--namespace", "-n", default=os.environ.get("HELM_NAMESPACE") or DEFAULT_NAME)
    with_values = argparse.ArgumentParser(add_help=False)
    with_values.add_argument("-f", "--values", type=Path, action="append", default=[],
                             help="values file (repeatable, merged in order)")
    with_values.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                             help="helm --set expression (repeatable)")

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("lint", parents=[common, with_values]).set_defaults(run=lint)
    cmd = commands.add_parser("template", parents=[common, with_values])
    cmd.add_argument("--output-dir", type=Path)
    cmd.set_defaults(run=template)
    cmd = commands.add_parser("deploy", parents=[common, with_values])
    cmd.add_argument("--dry-run", action="store_true", help="render and check against the cluster, change nothing")
    cmd.add_argument("--wait", action="store_true", help="wait up to 5 minutes for the resources to be ready")
    cmd.set_defaults(run=deploy)
    cmd = commands.add_parser("install-chart", parents=[common, with_values])
    cmd.add_argument("--repo", required=True, help="chart repository URL")
    cmd.add_argument("--chart", required=True, help="chart name in the repository")
    cmd.add_argument("--version", required=True, help="exact chart version")
    cmd.add_argument("--dry-run", action="store_true", help="render and check against the cluster, change nothing")
    cmd.set_defaults(run=install_chart)
    commands.add_parser("uninstall", parents=[common]).set_defaults(run=uninstall)
    commands.add_parser("status", parents=[common]).set_defaults(run=status)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        args.run(args)
    except HelmTaskError as error:
        print(f"helm: {error}", file=sys.stderr)
        return 1
    except helm.HelmError as error:
        print(f"helm: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
