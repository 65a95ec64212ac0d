"""MCP servers listed in soloist.toml become tools of the workspace's steps and agents."""

from __future__ import annotations

import json
from pathlib import Path

from support.mcp_servers import stdio_command
from support.workspaces import write_workspace

from soloist.execution.llm.router import FixedRouter
from soloist.testing.llm import ScriptedProvider, reply, tool_call
from soloist.workspace import Workspace

PLAYBOOKS = {
    "sum": """
name: sum
steps:
  - {id: add, tool: mcp.calc.add, args: {a: 2, b: 3}}
  - id: ask
    agent: counter
    task: "Add 4 and 5 with your tool."
""",
}


def test_mcp_tools_from_the_workspace_config(tmp_path: Path) -> None:
    toml = "[mcp.servers.calc]\ncommand = " + json.dumps(stdio_command()) + "\n"
    root = write_workspace(tmp_path / "ws", PLAYBOOKS, toml=toml)
    (root / "agents").mkdir()
    (root / "agents" / "counter.yaml").write_text(
        "name: counter\ninstructions: Count.\ntools: ['mcp.calc.*']\n")
    with Workspace(root) as ws:
        ws.deploy()
        provider = ScriptedProvider([tool_call("mcp.calc.add", {"a": 4, "b": 5}),
                                     reply("9")])
        ws.runner.router = FixedRouter(provider)
        run_id = ws.start("sum")
        ws.worker().run(until_idle=True)
        assert ws.get_run(run_id).state == "done"
        steps = {s.step_id: s.output for s in ws.show(run_id).steps}
        assert steps == {"add": 5, "ask": 9}
        offered = sorted(t.name for t in provider.requests[0].tools)
        assert "mcp.calc.add" in offered and "mcp.calc.delete_all" in offered
        calls = [e.data for e in ws.log(run_id=run_id) if e.kind == "tool.call"]
        assert calls[0]["tool"] == "mcp.calc.add" and calls[0]["result"] == 9
