"""``soloist run PLAYBOOK --each FILE``: a run per row, all or none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests_support import soloist


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    soloist("init", str(root))
    soloist("deploy", "-w", str(root))
    return root


def runs(root: Path) -> list[dict[str, object]]:
    found = json.loads(soloist("runs", "--json", "-w", str(root)).stdout)
    assert isinstance(found, list)
    return found


def test_a_csv_starts_a_run_per_row_with_typed_cells(workspace: Path) -> None:
    sheet = workspace / "timesheet.csv"
    sheet.write_text("customer,hours,rate\nAda,12,95\nBob,3.5,\n\n")
    started = soloist("run", "invoice", "--each", str(sheet), "-w", str(workspace))
    assert "started 2 runs of invoice" in started.stdout
    assert f"({sheet}:2)" in started.stdout and f"({sheet}:3)" in started.stdout
    inputs = sorted((r["inputs"] for r in runs(workspace)), key=str)
    assert inputs == [{"customer": "Ada", "hours": 12, "rate": 95},
                      {"customer": "Bob", "hours": 3.5}]


def test_one_bad_row_starts_nothing_and_names_its_line(workspace: Path) -> None:
    sheet = workspace / "timesheet.csv"
    sheet.write_text("customer,hours\nAda,12\nBob,lots\n")
    failed = soloist("run", "invoice", "--each", str(sheet), "-w", str(workspace),
                     check=False)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert f"{sheet}:3: input for playbook 'invoice' is invalid at hours" in failed.stderr
    assert "nothing was started" in failed.stderr
    assert runs(workspace) == []


def test_json_lines_rows_and_their_mistakes(workspace: Path) -> None:
    lines = workspace / "batch.jsonl"
    lines.write_text('{"customer": "Ada", "hours": 1}\n\n{"customer": "Cy", "hours": 2}\n')
    started = json.loads(soloist("run", "invoice", "--each", str(lines), "--json",
                                 "-w", str(workspace)).stdout)
    assert len(started["started"]) == 2
    lines.write_text('{"customer": "Ada", "hours": 1}\n[1, 2]\n')
    failed = soloist("run", "invoice", "--each", str(lines), "-w", str(workspace),
                     check=False)
    assert f"{lines}:2 must be a JSON object" in failed.stderr
    assert len(runs(workspace)) == 2
    missing = soloist("run", "invoice", "--each", str(workspace / "nope.csv"),
                      "-w", str(workspace), check=False)
    assert missing.returncode == 1 and "cannot read" in missing.stderr
