"""Prints traces from a Jaeger query API as indented span trees, one line per span: service,
span name, start relative to the trace's first span, duration, and the attributes that say
where a record went (HTTP route and status, request id, topic, partition, offset, event id,
event type, batch size). For the local Jaeger (./taskw trace:up), whose build has no web UI,
and for compose's alike (same port).

    traces.py REQUEST_ID             the trace(s) of an api-gateway request: its x-request-id
    traces.py --trace-id TRACE_ID    one trace by id (the traceparent's second field)
    traces.py --last 5               the newest traces that touched --service
    traces.py ... --service media-service --lookback 2h --all-tags --url http://host:16686

Standard library only (./taskw trace:show runs it with .venv's Python). The API is Jaeger's
HTTP JSON API (/api/traces), which Jaeger v1 and v2 both serve.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

DEFAULT_URL = "http://{host}:{port}".format(
    host=os.environ.get("LOCAL_STACK_HOST", "127.0.0.1"),
    port=os.environ.get("LOCAL_JAEGER_UI_PORT", "16686"),
)

# Shown on every span line when present, in this order (--all-tags shows every attribute).
KEY_ATTRIBUTES = (
    "http.response.status_code",
    "request_id",
    "messaging.destination.name",
    "messaging.destination.partition.id",
    "messaging.kafka.offset",
    "messaging.message.id",
    "event.type",
    "db.operation.batch.size",
    "otel.status_code",
    "error",
)
SHORT_NAMES = {
    "http.response.status_code": "status",
    "messaging.destination.name": "topic",
    "messaging.destination.partition.id": "partition",
    "messaging.kafka.offset": "offset",
    "messaging.message.id": "event_id",
    "db.operation.batch.size": "batch",
}


def fetch(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return {"data": []}
        raise SystemExit(f"traces: {url} answered {error.code}: {error.read()[:300]!r}") from None
    except (urllib.error.URLError, OSError) as error:
        raise SystemExit(
            f"traces: no Jaeger answers at {url} ({error}); start the local one with ./taskw trace:up"
        ) from None


def query(args: argparse.Namespace) -> list[dict[str, Any]]:
    base = args.url.rstrip("/")
    if args.trace_id:
        return fetch(f"{base}/api/traces/{urllib.parse.quote(args.trace_id.lower())}").get("data") or []
    params = {"service": args.service, "lookback": args.lookback, "limit": str(args.last or 20)}
    if args.request_id:
        params["tags"] = json.dumps({"request_id": args.request_id})
    return fetch(f"{base}/api/traces?{urllib.parse.urlencode(params)}").get("data") or []


def attributes(span: dict[str, Any]) -> dict[str, Any]:
    return {tag["key"]: tag.get("value") for tag in span.get("tags", [])}


def millis(micros: int) -> str:
    return f"{micros / 1000:.1f} ms"


def render(trace: dict[str, Any], all_tags: bool) -> list[str]:
    spans = trace.get("spans", [])
    processes = trace.get("processes", {})
    by_id = {span["spanID"]: span for span in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in spans:
        parent = next(
            (ref["spanID"] for ref in span.get("references", [])
             if ref.get("refType") == "CHILD_OF" and ref.get("spanID") in by_id),
            None,
        )
        children.setdefault(parent, []).append(span)
    for siblings in children.values():
        siblings.sort(key=lambda s: s["startTime"])
    start = min((s["startTime"] for s in spans), default=0)
    end = max((s["startTime"] + s["duration"] for s in spans), default=0)
    services = sorted({processes.get(s["processID"], {}).get("serviceName", "?") for s in spans})
    lines = [
        f"trace {trace.get('traceID')}  {len(spans)} span(s), {', '.join(services)}, {millis(end - start)}"
    ]

    def walk(span: dict[str, Any], depth: int) -> None:
        service = processes.get(span["processID"], {}).get("serviceName", "?")
        tags = attributes(span)
        shown = tags if all_tags else {k: tags[k] for k in KEY_ATTRIBUTES if k in tags}
        text = " ".join(f"{SHORT_NAMES.get(k, k)}={v}" for k, v in shown.items())
        lines.append(
            f"{'  ' * (depth + 1)}{service}: {span['operationName']}"
            f"  +{millis(span['startTime'] - start)} {millis(span['duration'])}"
            + (f"  {text}" if text else "")
        )
        for ref in span.get("references", []):
            if ref.get("refType") == "CHILD_OF" and ref.get("spanID") in by_id:
                continue
            kind = "child of" if ref.get("refType") == "CHILD_OF" else "linked to"
            lines.append(f"{'  ' * (depth + 2)}({kind} span {ref.get('spanID')} of trace {ref.get('traceID')})")
        for child in children.get(span["spanID"], []):
            walk(child, depth + 1)

    for root in children.get(None, []):
        walk(root, 0)
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("request_id", nargs="?", help="an api-gateway request's x-request-id")
    parser.add_argument("--trace-id", help="a trace id (32 hex digits)")
    parser.add_argument("--last", type=int, help="the newest N traces of --service")
    parser.add_argument("--service", default="api-gateway", help="service to search (default api-gateway)")
    parser.add_argument("--lookback", default="1h", help="how far back to search (default 1h)")
    parser.add_argument("--all-tags", action="store_true", help="print every attribute of every span")
    parser.add_argument("--url", default=os.environ.get("JAEGER_URL", DEFAULT_URL),
                        help=f"Jaeger's HTTP API (default JAEGER_URL or {DEFAULT_URL})")
    args = parser.parse_args(argv)
    if sum(bool(x) for x in (args.request_id, args.trace_id, args.last)) != 1:
        parser.error("give one of REQUEST_ID, --trace-id or --last")
    traces = sorted(query(args), key=lambda t: min((s["startTime"] for s in t.get("spans", [])), default=0))
    if not traces:
        print(
            "no trace found; spans reach Jaeger a few seconds after the request, and only from services "
            "started while it ran (./taskw services:restart) - see docs/tracing.md",
            file=sys.stderr,
        )
        return 1
    for trace in traces:
        print("\n".join(render(trace, args.all_tags)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
