"""The interfaces benchmark (bench/api.py) at a tiny size: every function it runs, on
SQLite, and the JSON line it ends with."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "api.py"
KEYS = ["runs_list_p99_ms", "run_detail_p99_ms", "inbox_p99_ms", "metrics_p99_ms",
        "sse_p99_ms", "store_runs_list_p99_ms", "overhead_ratio"]


def load() -> ModuleType:
    # By its path: the name ``api`` would also be tests/api's.
    spec = importlib.util.spec_from_file_location("bench_api", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_api"] = module
    spec.loader.exec_module(module)
    return module


def test_a_tiny_run_reports_every_figure(capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOLOIST_DATABASE_URL", raising=False)
    bench = load()
    assert bench.main(["--runs", "50", "--events", "500", "--requests", "5",
                       "--sse-events", "5", "--sse-interval", "0.02", "--skip-postgres",
                       "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(out[-1])
    for key in KEYS:
        assert isinstance(figures[key], float) and figures[key] > 0, key
    for name in ("runs_list", "run_detail", "inbox", "metrics"):
        for key in (f"{name}_p50_ms", f"store_{name}_p50_ms", f"store_{name}_p99_ms",
                    f"{name}_ratio"):
            assert figures[key] > 0, key
    assert figures["seeded_runs"] == 50
    assert figures["seeded_events"] >= 500  # the budget, plus what the seed's runs add
    assert figures["seeded_approvals"] > 0
    assert figures["goals"]["overhead_ratio"] == 3.0
    assert figures["pg_unavailable"] == "skipped (--skip-postgres)"
    assert "SSE delivery" in "\n".join(out[:-1])


def test_the_seed_leaves_an_inbox_and_a_fifty_step_run(tmp_path: Path) -> None:
    bench = load()
    ws = bench.make_workspace(tmp_path / "ws", f"sqlite:///{tmp_path / 'b.db'}")
    try:
        seeded = bench.seed(ws, 700, 12_000)  # 100 waiting need 700 runs (see Seeder)
        assert seeded["seeded_runs"] == 700
        assert seeded["seeded_events"] == 12_000
        assert len(ws.approvals()) == bench.WAITING
        detail = ws.show(seeded["detail_run"])
        assert len(detail.steps) == bench.DETAIL_STEPS
        assert all(s.state == "done" and s.output for s in detail.steps)
        assert ws.verify().ok  # the seeded log is a sound hash chain
        figures = ws.metrics()
        assert figures["started"] == 700 and figures["runs"]["done"] > 0
        assert figures["cost_usd"] > 0 and figures["recoveries"] > 0
    finally:
        ws.close()
