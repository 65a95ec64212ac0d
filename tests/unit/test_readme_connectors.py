"""The README's tour section on connectors: its soloist.toml example is valid, one table of
each kind, and its breaker table is the connector's."""

from __future__ import annotations

from pathlib import Path

from soloist.config import parse_toml
from soloist.config.connectors import KINDS
from soloist.control.breakers import configured_breakers

README = Path(__file__).resolve().parents[2] / "README.md"


def section() -> str:
    text = README.read_text(encoding="utf-8").split("\n### Connectors\n", 1)[1]
    return text.split("\n### ", 1)[0]


def test_the_tour_example_has_a_valid_table_of_every_kind() -> None:
    example = section().split("```toml\n", 1)[1].split("```", 1)[0]
    settings = parse_toml(example, "README.md")
    assert {c.kind for c in settings.connectors.values()} == set(KINDS)
    mail = settings.connectors["mail"]
    assert (mail.bucket, mail.concurrency, mail.backlog) == ((5, 10), 2, 500)
    policy = configured_breakers(settings.breakers).policy("mail")
    assert (policy.failure_threshold, policy.cooldown) == (3, 60.0)


def test_the_tour_names_the_commands_that_exist() -> None:
    from soloist.interfaces.cli.connectors import connectors_app

    names = {command.name for command in connectors_app.registered_commands}
    assert names == {"test", "sync"}
    for shown in ("soloist connectors test NAME", "soloist connectors sync NAME",
                  "soloist approve ID", "soloist resolve ID"):
        assert shown in " ".join(section().split()), shown


def test_the_tour_playbook_that_answers_mail_deploys(tmp_path: Path) -> None:
    from soloist.workspace import Workspace

    example = section().split("```toml\n", 1)[1].split("```", 1)[0]
    playbook = section().split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "agents").mkdir()
    (tmp_path / "playbooks" / "answer.yaml").write_text(playbook)
    (tmp_path / "agents" / "assistant.yaml").write_text(
        "name: assistant\ninstructions: Answer the client's email briefly.\n"
        "tools: [mail.search]\n")
    (tmp_path / "soloist.toml").write_text('[workspace]\nname = "t"\n' + example)
    with Workspace(tmp_path) as ws:
        for name in ("MAIL_PASSWORD", "CALDAV_PASSWORD", "STRIPE_KEY",
                     "STRIPE_WEBHOOK_SECRET", "FORMS_HOOK_SECRET"):
            ws.secrets.set(name, f"{name.lower()}-value", "person:test")
        report = ws.deploy()
    assert "answer-invoice-questions" in str(report)
