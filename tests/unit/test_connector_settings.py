"""``[connectors.NAME]``: one strict table per kind, picked by ``kind``; credentials only
as ``secret:NAME``; hosts, URLs, zones and names checked when soloist.toml is read; every
mistake one sentence naming the table, the key and the line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from soloist.config import parse_toml
from soloist.config.connectors import (
    KINDS,
    BillingConnector,
    CalendarConnector,
    EmailConnector,
    GitConnector,
    WebhookConnector,
    secret_fields,
)
from soloist.config.hosts import check_host
from soloist.control.hosts import check_host_pattern
from soloist.errors import ConfigError

README = Path(__file__).resolve().parents[2] / "README.md"

EMAIL = '''[connectors.mail]
kind = "email"
smtp_host = "SMTP.Example.com"
username = "ada@example.com"
password = "secret:MAIL_PASSWORD"
from_address = "ada@example.com"
'''
CALENDAR = '''[connectors.cal]
kind = "calendar"
url = "https://dav.example.com/dav/"
username = "ada"
password = "secret:CALDAV"
'''
BILLING = '''[connectors.stripe]
kind = "billing"
api_key = "secret:STRIPE_KEY"
currency = "EUR"
'''
GIT = '''[connectors.site]
kind = "git"
remote = "git@github.com:ada/site.git"
author_name = "Ada"
author_email = "ada@example.com"
'''
WEBHOOK = '''[connectors.forms]
kind = "webhook"
secret = "secret:FORMS"
'''


def sentence(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_toml(text)
    return str(caught.value)


def test_each_kind_reads_into_its_own_model_with_its_defaults() -> None:
    tables = parse_toml("\n".join([EMAIL, CALENDAR, BILLING, GIT, WEBHOOK]))
    mail, cal, stripe, site, forms = (tables.connectors[name] for name in
                                      ("mail", "cal", "stripe", "site", "forms"))
    assert isinstance(mail, EmailConnector)
    assert mail.smtp == ("smtp.example.com", 587) and mail.imap is None
    assert (mail.rate, mail.bucket, mail.concurrency, mail.backlog, mail.timeout) == (
        None, None, None, 1000, 30.0)
    assert isinstance(cal, CalendarConnector)
    assert (cal.timezone, cal.calendar, cal.poll_interval) == ("UTC", None, 60.0)
    assert isinstance(stripe, BillingConnector)
    assert (stripe.provider, stripe.currency, stripe.base_url, stripe.webhook_secret) == (
        "stripe", "eur", None, None)
    assert isinstance(site, GitConnector) and (site.branch, site.workdir) == ("main", None)
    assert isinstance(forms, WebhookConnector)
    assert (forms.tolerance, forms.dedupe_header, forms.path) == (300.0, "Webhook-Id", None)


def test_ports_follow_the_security_unless_given() -> None:
    tables = parse_toml(EMAIL + 'smtp_security = "tls"\nimap_host = "::1"\n'
                        'imap_security = "starttls"\n')
    mail = tables.connectors["mail"]
    assert isinstance(mail, EmailConnector)
    assert mail.smtp == ("smtp.example.com", 465) and mail.imap == ("::1", 143)
    mail = parse_toml(EMAIL + 'smtp_port = 2525\nimap_host = "127.0.0.1"\nimap_port = 1143\n'
                      ).connectors["mail"]
    assert isinstance(mail, EmailConnector)
    assert mail.smtp == ("smtp.example.com", 2525) and mail.imap == ("127.0.0.1", 1143)


def test_the_limits_are_common_to_every_kind() -> None:
    limits = 'rate = 2.5\nconcurrency = 3\nbacklog = 50\ntimeout = "2m"\n'
    tables = parse_toml("\n".join(kind + limits for kind in
                                  (EMAIL, CALENDAR, BILLING, GIT, WEBHOOK)))
    for connector in tables.connectors.values():
        assert connector.bucket == (2.5, 3)  # burst: the rate rounded up
        assert (connector.concurrency, connector.backlog, connector.timeout) == (3, 50, 120.0)
    with_burst = parse_toml(WEBHOOK + "rate = 0.5\nburst = 4\n").connectors["forms"]
    assert with_burst.bucket == (0.5, 4)
    assert parse_toml(WEBHOOK + "rate = 0.1\n").connectors["forms"].bucket == (0.1, 1)


def test_a_connector_names_its_secrets_by_key() -> None:
    assert {kind: secret_fields(model) for kind, model in KINDS.items()} == {
        "email": ("password",), "calendar": ("password",),
        "billing": ("api_key", "webhook_secret"), "git": ("password",),
        "webhook": ("secret",)}
    tables = parse_toml(EMAIL + "\n" + BILLING + 'webhook_secret = "secret:HOOK"\n')
    assert tables.connectors["mail"].secrets() == {"password": "secret:MAIL_PASSWORD"}
    assert tables.connectors["stripe"].secrets() == {"api_key": "secret:STRIPE_KEY",
                                                     "webhook_secret": "secret:HOOK"}
    assert parse_toml(BILLING).connectors["stripe"].secrets() == {
        "api_key": "secret:STRIPE_KEY"}


def test_every_kind_is_strict_frozen_and_closed() -> None:
    assert set(KINDS) == {"email", "calendar", "billing", "git", "webhook"}
    for model in KINDS.values():
        config = model.model_config
        assert (config.get("extra"), config.get("frozen"), config.get("strict")) == (
            "forbid", True, True)
    mail = parse_toml(EMAIL).connectors["mail"]
    with pytest.raises(ValueError, match="frozen"):
        mail.rate = 3  # type: ignore[misc]


@pytest.mark.parametrize(("text", "expected"), [
    # the kind
    ('[connectors.mail]\nkind = "fax"\n',
     'soloist.toml:2: [connectors.mail] kind must be one of email, calendar, billing, git, '
     'webhook, not "fax"'),
    ('[connectors.mail]\nkind = 3\n',
     "soloist.toml:2: [connectors.mail] kind must be one of email, calendar, billing, git, "
     "webhook, not 3"),
    ('\n[connectors.mail]\nsmtp_host = "x"\n',
     "soloist.toml:2: [connectors.mail] kind is required: one of email, calendar, billing, "
     "git, webhook"),
    ("[connectors]\nmail = 3\n", "soloist.toml:2: [connectors] mail must be a table, not 3"),
    ('[connectors."my mail"]\nkind = "email"\n',
     "soloist.toml:1: [connectors] \"my mail\": the connector name 'my mail' may hold only "
     "letters, digits, '_' and '-'"),
    ('[conectors.mail]\nkind = "email"\n',
     "soloist.toml:1: unknown table [conectors]; did you mean [connectors]?"),
    # keys of the kind, and of other kinds
    (EMAIL + "smtp_hots = 1\n",
     "soloist.toml:7: unknown key smtp_hots in [connectors.mail] (kind email); did you mean "
     "smtp_host?"),
    (EMAIL + 'url = "https://dav.example.com/"\n',
     "soloist.toml:7: unknown key url in [connectors.mail] (kind email); url is a setting of "
     "kind calendar or webhook"),
    (WEBHOOK + 'username = "ada"\n',
     "soloist.toml:4: unknown key username in [connectors.forms] (kind webhook); username is "
     "a setting of kind email or calendar or git"),
    (BILLING + 'secret = "secret:X"\n',
     "soloist.toml:5: unknown key secret in [connectors.stripe] (kind billing); did you mean "
     "webhook_secret?"),
    (WEBHOOK + "[connectors.forms.extra]\nx = 1\n",
     "soloist.toml:4: unknown table [connectors.forms.extra]; [connectors.forms] (kind "
     "webhook) has no tables inside it"),
    ('[connectors.mail]\nkind = "email"\n',
     "soloist.toml:1: [connectors.mail] smtp_host is required"),
    # credentials
    (EMAIL.replace('"secret:MAIL_PASSWORD"', '"hunter2-hunter2"'),
     'soloist.toml:5: [connectors.mail] password: a credential is not written in '
     'soloist.toml; store it with `soloist secret set NAME` and write password = '
     '"secret:NAME"'),
    (BILLING.replace('"secret:STRIPE_KEY"', '"sk_test_abc"'),
     'soloist.toml:3: [connectors.stripe] api_key: a credential is not written in '
     'soloist.toml; store it with `soloist secret set NAME` and write api_key = '
     '"secret:NAME"'),
    (WEBHOOK.replace('"secret:FORMS"', '"secret:9lives"'),
     "soloist.toml:3: [connectors.forms] secret: 'secret:9lives' names no valid secret: a "
     "name holds letters, digits, '_', '-' and '.', starting with a letter"),
    (WEBHOOK.replace('"secret:FORMS"', "42"),
     "soloist.toml:3: [connectors.forms] secret must be a string, not 42"),
    # hosts and URLs
    (EMAIL.replace('"SMTP.Example.com"', '"smtp://smtp.example.com"'),
     "soloist.toml:3: [connectors.mail] smtp_host: 'smtp://smtp.example.com' must be a host "
     "name such as mail.example.com or 127.0.0.1, without a scheme or a path"),
    (EMAIL.replace('"SMTP.Example.com"', '"smtp.example.com:587"'),
     "soloist.toml:3: [connectors.mail] smtp_host: 'smtp.example.com:587' must be a host "
     "name such as mail.example.com or 127.0.0.1, without a port: the port is a setting of "
     "its own"),
    (EMAIL.replace('"SMTP.Example.com"', '"smtp..example.com"'),
     "soloist.toml:3: [connectors.mail] smtp_host: 'smtp..example.com' is not a host name "
     "or an IP address (such as mail.example.com or 127.0.0.1)"),
    (EMAIL.replace('"SMTP.Example.com"', '""'),
     "soloist.toml:3: [connectors.mail] smtp_host: a host cannot be empty; give a host name "
     "such as mail.example.com or 127.0.0.1"),
    (EMAIL + "smtp_port = 70000\n",
     "soloist.toml:7: [connectors.mail] smtp_port: expected a port number from 1 to 65535, "
     "not 70000"),
    (EMAIL + 'smtp_security = "ssl"\n',
     "soloist.toml:7: [connectors.mail] smtp_security must be 'starttls', 'tls' or 'none', "
     'not "ssl"'),
    (EMAIL.replace('username = "ada@example.com"', 'username = " "'),
     "soloist.toml:4: [connectors.mail] username: cannot be empty"),
    (EMAIL + 'sent_folder = "Sent Items"\n',
     "soloist.toml:1: [connectors.mail] sent_folder: applies only with an imap_host"),
    (EMAIL.replace('"ada@example.com"\n', '"ada"\n'),
     "soloist.toml:6: [connectors.mail] from_address: 'ada' is not an email address such as "
     "ada@example.com"),
    (CALENDAR.replace("https://", "ftp://"),
     "soloist.toml:3: [connectors.cal] url: 'ftp://dav.example.com/dav/' must be an http:// "
     "or https:// URL"),
    (CALENDAR.replace("https://", "https://ada:pw@"),
     '[connectors.cal] url: a URL here carries no password: give it as password = '
     '"secret:NAME"'),
    (CALENDAR.replace("dav.example.com", "dav example.com"),
     "[connectors.cal] url: 'https://dav example.com/dav/' names no valid host"),
    (CALENDAR.replace("example.com", "example.com:dav"),
     "[connectors.cal] url: 'https://dav.example.com:dav/dav/' has an invalid port"),
    (CALENDAR + 'timezone = "Mars/Olympus_Mons"\n',
     "soloist.toml:6: [connectors.cal] timezone: 'Mars/Olympus_Mons' is not a time zone; "
     "use an IANA name such as Europe/Paris or UTC"),
    (CALENDAR + 'timezone = "../../etc/passwd"\n',
     "soloist.toml:6: [connectors.cal] timezone: '../../etc/passwd' is not a time zone; use "
     "an IANA name such as Europe/Paris or UTC"),
    (BILLING + 'provider = "paddle"\n',
     "soloist.toml:5: [connectors.stripe] provider must be 'stripe', not \"paddle\""),
    (BILLING.replace('"EUR"', '"euro"'),
     "soloist.toml:4: [connectors.stripe] currency: 'euro' is not a currency; use a "
     "three-letter ISO code such as usd or eur"),
    (BILLING + 'base_url = "127.0.0.1:8420"\n',
     "soloist.toml:5: [connectors.stripe] base_url: '127.0.0.1:8420' must be an http:// or "
     "https:// URL"),
    (GIT.replace('"git@github.com:ada/site.git"', '"--upload-pack=touch /tmp/x"'),
     "soloist.toml:3: [connectors.site] remote: '--upload-pack=touch /tmp/x' is not a "
     "remote: it starts with '-'"),
    (GIT.replace('"git@github.com:ada/site.git"', '"https://ada:token@github.com/a/b"'),
     "soloist.toml:3: [connectors.site] remote: a remote URL carries no password: store it "
     "with `soloist secret set NAME` instead"),
    (GIT + 'branch = "-f"\n',
     "soloist.toml:6: [connectors.site] branch: '-f' is not a branch name git accepts"),
    (GIT + 'password = "hunter2"\n',
     'soloist.toml:6: [connectors.site] password: a credential is not written in '
     'soloist.toml; store it with `soloist secret set NAME` and write password = '
     '"secret:NAME"'),
    (GIT + 'branch = "a..b"\n',
     "soloist.toml:6: [connectors.site] branch: 'a..b' is not a branch name git accepts"),
    (WEBHOOK + 'dedupe_header = "X Delivery"\n',
     "soloist.toml:4: [connectors.forms] dedupe_header: 'X Delivery' is not an HTTP header "
     "name"),
    (WEBHOOK + 'path = "a/b"\n',
     "soloist.toml:4: [connectors.forms] path: the webhook path name 'a/b' may hold only "
     "letters, digits, '_' and '-'"),
    (WEBHOOK + "colour = 1\n",
     "soloist.toml:4: unknown key colour in [connectors.forms] (kind webhook); known: "
     "kind, secret, tolerance, dedupe_header, path, url, rate, burst, concurrency, "
     "backlog, timeout"),
    (WEBHOOK + 'url = "ftp://example.com/in"\n',
     "soloist.toml:4: [connectors.forms] url: 'ftp://example.com/in' must be an http:// or "
     "https:// URL"),
    (WEBHOOK + 'tolerance = "0s"\n',
     "soloist.toml:4: [connectors.forms] tolerance: '0s' is no time at all; give a duration "
     "above zero, such as 30s"),
    # the limits
    (WEBHOOK + "rate = 0\n",
     "soloist.toml:4: [connectors.forms] rate must be above 0, not 0"),
    (WEBHOOK + "burst = 5\n",
     "soloist.toml:1: [connectors.forms] burst: applies only with a rate"),
    (WEBHOOK + "rate = 1\nburst = 0\n",
     "soloist.toml:5: [connectors.forms] burst must be at least 1, not 0"),
    (WEBHOOK + "rate = 5\nburst = 3\n",
     "soloist.toml:1: [connectors.forms] burst: 3 calls in a second is fewer than the rate "
     "of 5 a second; make it at least 5"),
    (WEBHOOK + "concurrency = 1.5\n",
     "soloist.toml:4: [connectors.forms] concurrency must be a whole number, not 1.5"),
    (WEBHOOK + "backlog = 0\n",
     "soloist.toml:4: [connectors.forms] backlog must be at least 1, not 0"),
    (WEBHOOK + 'timeout = "soon"\n',
     "soloist.toml:4: [connectors.forms] timeout: 'soon' is not a duration; write it as 30s, "
     "5m, 2h or 1d"),
])
def test_a_mistake_is_one_sentence_naming_the_table_and_key(text: str, expected: str) -> None:
    got = sentence(text)
    assert got == expected or (not expected.startswith("soloist.toml")
                               and re.sub(r"^soloist\.toml:\d+: ", "", got) == expected)


def test_a_refused_credential_is_never_repeated() -> None:
    got = sentence(EMAIL.replace('"secret:MAIL_PASSWORD"', '"correct horse battery"'))
    assert "correct horse" not in got and "soloist secret set" in got


@pytest.mark.parametrize(("written", "host"), [
    ("mail.example.com", "mail.example.com"), ("Mail.Example.COM.", "mail.example.com."),
    ("localhost", "localhost"), ("127.0.0.1", "127.0.0.1"), ("::1", "::1"),
    ("[::1]", "::1"), ("smtp_relay", "smtp_relay"),
    ("xn--bcher-kva.example", "xn--bcher-kva.example"),
])
def test_a_host_is_a_name_or_an_address(written: str, host: str) -> None:
    assert check_host(written) == host


@pytest.mark.parametrize("written", [
    "", "https://mail.example.com", "mail.example.com/smtp", "mail example.com",
    "mail.example.com:25", "[::1]:25", "-mail.example.com", "mail-.example.com",
    "a" * 64 + ".example.com", "mail.exa$mple.com", ".example.com",
])
def test_anything_else_is_not_a_host(written: str) -> None:
    with pytest.raises(ValueError):
        check_host(written)


def test_host_patterns_keep_their_own_rules_on_the_shared_check() -> None:
    assert check_host_pattern("*.Example.com:8443") == "*.example.com:8443"
    assert check_host_pattern("[::1]:8080") == "[::1]:8080"
    with pytest.raises(ValueError, match="host pattern 'x:ab' has an invalid port"):
        check_host_pattern("x:ab")
    with pytest.raises(ValueError, match="not a URL"):
        check_host_pattern("https://example.com")


def test_the_readme_example_of_every_kind_is_valid() -> None:
    section = README.read_text(encoding="utf-8").split("#### Connectors", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    tables = parse_toml(example, "README.md")
    assert {c.kind for c in tables.connectors.values()} == set(KINDS)
