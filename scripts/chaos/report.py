"""The chaos run's tables: printed, and kept in docs/reliability.md between markers, one row per
run label (a new run of the same label replaces its rows, so the document holds the latest
2-minute run of ./taskw test next to the recorded long run)."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from scripts.chaos.audit import DUPLICATED, LOST, MEASURE_WINDOW, RECOVERY_LIMIT, STUCK, AuditResult
from scripts.chaos.model import KINDS, Fault

SUMMARY_HEADER = ("run", "date", "duration", "load", "faults injected", "acknowledged", "effects",
                  "lost", "duplicated", "stuck", "unexplained", "longest recovery", "result")
RECOVERY_HEADER = ("run", "target", "kills", "longest recovery", "mean recovery")
SUMMARY_MARK, RECOVERY_MARK = "chaos-summary", "chaos-recoveries"


def seconds(value: float | None) -> str:
    return f"> {MEASURE_WINDOW:.0f} s" if value is None else f"{value:.1f} s"


def recovery_text(fault: Fault) -> str:
    """The recovery, and for one not seen within the window the kinds still without effect."""
    if fault.recovery is not None:
        return seconds(fault.recovery)
    waiting = [kind for kind, value in fault.per_kind.items() if value is None]
    return f"{seconds(None)} ({', '.join(waiting) or 'nothing sent'} without effect)"


def summary_row(label: str, date: str, load_seconds: float, counts: dict[str, int], faults: list[Fault],
                result: AuditResult, passed: bool) -> tuple[str, ...]:
    total = sum(counts.values())
    load = f"{total} requests ({', '.join(f'{counts[k]} {k}s' for k in KINDS)}), {total / load_seconds:.1f}/s"
    targets = defaultdict(int)
    for fault in faults:
        targets[fault.target] += 1
    injected = f"{len(faults)} ({', '.join(f'{t} ×{n}' for t, n in targets.items())})"
    longest = max(faults, key=lambda f: float("inf") if f.recovery is None else f.recovery, default=None)
    longest_text = "–" if longest is None else f"{recovery_text(longest)}, {longest.target}"
    return (label, date, f"{load_seconds / 60:.1f} min", load, injected, str(result.acknowledged),
            str(result.effects), str(result.count(LOST)), str(result.count(DUPLICATED)),
            str(result.count(STUCK)), str(result.unexplained), longest_text, "passed" if passed else "FAILED")


def recovery_rows(label: str, faults: list[Fault]) -> list[tuple[str, ...]]:
    rows = []
    by_target: dict[str, list[Fault]] = defaultdict(list)
    for fault in faults:
        by_target[fault.target].append(fault)
    for target, kills in by_target.items():
        measured = [f.recovery for f in kills if f.recovery is not None]
        unseen = [f for f in kills if f.recovery is None]
        longest = recovery_text(unseen[0]) if unseen else f"{max(measured):.1f} s"
        if unseen and len(kills) > 1:
            longest += f" in {len(unseen)} of {len(kills)}"
        mean = f"{sum(measured) / len(measured):.1f} s" if measured else "–"
        rows.append((label, target, str(len(kills)), longest, mean))
    return rows


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _rows_between(text: str, mark: str) -> list[tuple[str, ...]]:
    match = re.search(rf"<!-- {mark}:begin -->\n(.*?)<!-- {mark}:end -->", text, re.S)
    if not match:
        return []
    rows = []
    for line in match.group(1).splitlines()[2:]:  # after the header and its rule
        if line.startswith("|"):
            rows.append(tuple(cell.strip() for cell in line.strip().strip("|").split(" | ")))
    return rows


def _replace_between(text: str, mark: str, body: str) -> str:
    block = f"<!-- {mark}:begin -->\n{body}\n<!-- {mark}:end -->"
    pattern = re.compile(rf"<!-- {mark}:begin -->\n.*?<!-- {mark}:end -->", re.S)
    if not pattern.search(text):
        raise ValueError(f"no <!-- {mark}:begin --> ... <!-- {mark}:end --> block in the document")
    return pattern.sub(lambda _: block, text)


def record(doc: Path, label: str, summary: tuple[str, ...], recoveries: list[tuple[str, ...]]) -> None:
    """Replaces the label's rows in both tables of `doc`, keeping the other labels' rows."""
    text = doc.read_text()
    kept = [row for row in _rows_between(text, SUMMARY_MARK) if row[0] != label]
    text = _replace_between(text, SUMMARY_MARK, table(SUMMARY_HEADER, kept + [summary]))
    kept = [row for row in _rows_between(text, RECOVERY_MARK) if row[0] != label]
    text = _replace_between(text, RECOVERY_MARK, table(RECOVERY_HEADER, kept + recoveries))
    doc.write_text(text)


def faults_table(faults: list[Fault], started: float) -> str:
    rows = []
    for fault in faults:
        kinds = ", ".join(f"{k} {seconds(v)}" for k, v in fault.per_kind.items())
        flag = "" if fault.recovery is not None and fault.recovery <= RECOVERY_LIMIT else "  <-- over the limit"
        rows.append((f"{fault.killed - started:.0f} s", fault.target, recovery_text(fault) + flag, kinds))
    return table(("at", "target", "effects again after", "per kind"), rows)
