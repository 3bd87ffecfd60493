"""Helpers shared by the end-to-end tests: the local stack's addresses, the debug binaries, a
test JWT secret and small utilities. (Imported by name: pytest puts this directory on sys.path.)"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import supabase_apply  # noqa: E402

BROKERS = os.environ.get("APP__KAFKA__BROKERS") or supabase_apply.local_stack_value(
    "LOCAL_KAFKA_BROKERS"
)
REGISTRY = os.environ.get("APP__REGISTRY__URL") or supabase_apply.local_stack_value(
    "LOCAL_SCHEMA_REGISTRY_URL"
)
# the local stack's server, without the database name
SERVER = supabase_apply.local_database_url().rsplit("/", 1)[0]
SECRET = "e2e-jwt-secret-with-at-least-32-characters!"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug"


def gateway_env(port: int, database: str, routes_file: Path, **settings: str) -> dict[str, str]:
    """The environment of an api-gateway on 127.0.0.1:`port` against the local stack, with its
    own database and routes file; `settings` adds APP__* variables (name without the prefix)."""
    return {
        **os.environ,
        "APP__HTTP__HOST": "127.0.0.1",
        "APP__HTTP__PORT": str(port),
        "APP__KAFKA__BROKERS": BROKERS,
        "APP__REGISTRY__URL": REGISTRY,
        "APP__POSTGRES__URL": f"{SERVER}/{database}",
        "APP__AUTH__JWT_SECRET": SECRET,
        "APP__GATEWAY__ROUTES_FILE": str(routes_file),
        "NO_COLOR": "1",
        **{f"APP__{name}": value for name, value in settings.items()},
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(claims: dict) -> str:
    signing_input = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    signature = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(signature)


def wait_healthy(port: int, process: subprocess.Popen, name: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{name} exited early with {process.returncode}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{name} did not become healthy")
