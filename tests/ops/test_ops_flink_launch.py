"""scripts/stack/flink_launch.py, the one Flink client that submits the local stack's jobs:
its job table agrees with flink.sh and the SQL files, savepoints become restore settings, and
one job that fails to plan neither stops the others nor goes unreported."""

from __future__ import annotations

import importlib.util
import re

import opslib

SCRIPT = opslib.REPO / "scripts" / "stack" / "flink_launch.py"
FLINK_SH = opslib.REPO / "scripts" / "stack" / "flink.sh"


def load():
    spec = importlib.util.spec_from_file_location("flink_launch", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_job_table_matches_the_names_flink_sh_manages():
    names = re.search(r"^JOB_NAMES=\(([^)]*)\)", FLINK_SH.read_text(), re.MULTILINE)
    assert names, "JOB_NAMES=(...) not found in flink.sh"
    assert names.group(1).split() == list(load().JOBS)


def test_sql_files_exist_in_the_documented_order():
    launch = load()
    assert launch.SQL_FILES == (
        "login_events", "signup_events", "signout_events", "unified_events", "credit_balance",
        "media_notification",
    )
    for name in launch.SQL_FILES:
        assert (opslib.REPO / "flink_jobs" / f"{name}_processor.sql").is_file()


def test_arguments_name_jobs_and_optional_savepoints():
    launch = load()
    assert launch.parse(["sql-processors", "pyflink-echo-job=file:/sp/savepoint-1"]) == [
        ("sql-processors", ""), ("pyflink-echo-job", "file:/sp/savepoint-1"),
    ]
    assert launch.restore_config("") == {}
    assert launch.restore_config("file:/sp/savepoint-1") == {
        "execution.savepoint.path": "file:/sp/savepoint-1",
        "execution.savepoint.ignore-unclaimed-state": "true",
    }


def test_unknown_job_is_rejected_before_anything_is_submitted(capsys):
    launch = load()
    submitted = []
    launch.JOBS = {"a": lambda extra: submitted.append("a") or 0}
    assert launch.main(["a", "nope"]) == 2
    assert submitted == []
    assert "unknown job 'nope'" in capsys.readouterr().err


def test_a_failing_job_does_not_keep_the_others_off_the_cluster(capsys):
    launch = load()
    calls = []

    def broken(extra):
        calls.append(("broken", extra))
        raise RuntimeError("planner exploded")

    def config_error(extra):
        calls.append(("config", extra))
        return 1

    def fine(extra):
        calls.append(("fine", extra))
        return 0

    launch.JOBS = {"broken": broken, "config": config_error, "fine": fine}
    assert launch.main(["broken", "config", "fine=file:/sp/x"]) == 1
    assert [name for name, _ in calls] == ["broken", "config", "fine"]
    assert calls[2][1]["execution.savepoint.path"] == "file:/sp/x"
    out = capsys.readouterr()
    assert "submitted fine" in out.out.splitlines()
    assert "failed broken" in out.out and "failed config" in out.out
    assert "planner exploded" in out.err
    assert "not submitted: broken config" in out.err
