"""Kafka security without a broker: settings, secrets from files, redaction in
``streamrec config``, no password options, client options, certificates and ACLs."""

from __future__ import annotations

import argparse
import importlib
import json
import re
import ssl
import stat
from pathlib import Path
from typing import Any

import pytest

from stream_app import cli
from stream_app.kafka import clients, secure_broker
from stream_app.kafka.admin import topic_specs
from stream_app.kafka.security import client_security, faust_credentials
from stream_app.settings import SECRET_FIELDS, Settings

SECRETS = {name: f"s3cret-{name}-value" for name in SECRET_FIELDS}


def test_every_secret_field_is_known() -> None:
    assert set(SECRET_FIELDS) == {
        "kafka_sasl_password",
        "kafka_ssl_key_password",
        "pseudonym_secret",
    }


def test_config_prints_every_setting_with_secrets_redacted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(f"STREAMREC_{name.upper()}", value)
    monkeypatch.setenv("STREAMREC_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("STREAMREC_KAFKA_SASL_USERNAME", "alice")

    assert cli.main(["config", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == set(Settings.model_fields)
    assert all(doc[name] == cli.REDACTED for name in SECRET_FIELDS)
    assert doc["kafka_sasl_username"] == "alice"

    assert cli.main(["config"]) == 0
    table = capsys.readouterr().out
    assert all(f"STREAMREC_{n.upper()} " in table for n in Settings.model_fields)
    for text in (table, json.dumps(doc)):
        assert not any(value in text for value in SECRETS.values())
    assert table.count(cli.REDACTED) == len(SECRET_FIELDS)


def test_secrets_come_from_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        f = tmp_path / name
        f.write_text(value + "\n")  # as `echo` writes it: the newline is not part of it
        monkeypatch.setenv(f"STREAMREC_{name.upper()}_FILE", str(f))
    s = Settings()
    for name, value in SECRETS.items():
        assert getattr(s, name).get_secret_value() == value
    assert (
        Settings.from_env(
            {"STREAMREC_PSEUDONYM_SECRET_FILE": str(tmp_path / "pseudonym_secret")}
        ).pseudonym_secret.get_secret_value()
        == SECRETS["pseudonym_secret"]
    )  # type: ignore[union-attr]

    with pytest.raises(ValueError, match="not both"):
        Settings(kafka_sasl_password="x", kafka_sasl_password_file=tmp_path / "pseudonym_secret")
    with pytest.raises(ValueError, match="cannot read"):
        Settings(kafka_sasl_password_file=tmp_path / "missing")


def test_sasl_needs_a_user_and_a_password() -> None:
    with pytest.raises(ValueError, match="kafka_sasl_username"):
        Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="alice")
    with pytest.raises(ValueError):
        Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_password="pw")
    with pytest.raises(ValueError):
        Settings(kafka_security_protocol="TLS")


def all_parsers() -> list[argparse.ArgumentParser]:
    """streamrec's parser, its sub-commands', and the model commands' own parsers."""

    class Built(Exception):
        pass

    found: list[argparse.ArgumentParser] = []
    todo = [cli.build_parser()]
    while todo:
        p = todo.pop()
        found.append(p)
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(action.choices.values())

    def capture(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
        found.append(self)
        raise Built

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(argparse.ArgumentParser, "parse_args", capture)
        mp.setattr(argparse.ArgumentParser, "parse_known_args", capture)
        for module, _ in cli.MODEL_COMMANDS.values():
            with pytest.raises(Built):
                importlib.import_module(module).main([])
    return found


def test_no_command_line_option_takes_a_secret() -> None:
    parsers = all_parsers()
    assert len(parsers) > len(cli.MODEL_COMMANDS) + 5  # the walk reached every command
    options = {o for p in parsers for a in p._actions for o in a.option_strings}
    assert "--secure" in options and "--json" in options
    secretive = re.compile(r"pass|secret|token|credential|sasl|keyfile", re.IGNORECASE)
    assert not [o for o in options if secretive.search(o)]


def test_plain_clients_get_exactly_the_bootstrap_servers() -> None:
    s = Settings(kafka_bootstrap="k:9092")
    assert clients.client_options(s) == {
        "bootstrap_servers": "k:9092",
        "security_protocol": "PLAINTEXT",
    }
    assert faust_credentials(s) is None


def test_sasl_ssl_reaches_plain_clients_and_faust(tmp_path: Path) -> None:
    secure_broker.ensure_certificates(tmp_path, ["127.0.0.1"])
    s = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="alice",
        kafka_sasl_password="pw",
        kafka_ssl_cafile=tmp_path / "ca.pem",
    )
    opts = client_security(s)
    assert opts["security_protocol"] == "SASL_SSL"
    assert (opts["sasl_mechanism"], opts["sasl_plain_username"]) == ("SCRAM-SHA-256", "alice")
    assert opts["sasl_plain_password"] == "pw"
    assert (
        opts["ssl_context"].check_hostname and opts["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    )

    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    from stream_app.app import faust_settings

    faust_opts = credentials_to_aiokafka_auth(faust_settings(s)["broker_credentials"])
    assert faust_opts["security_protocol"] == "SASL_SSL"
    assert faust_opts["sasl_mechanism"] == "SCRAM-SHA-256"
    assert faust_opts["sasl_plain_username"] == "alice"
    assert faust_opts["sasl_plain_password"] == "pw"
    assert faust_opts["ssl_context"] is not None

    ssl_only = Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=tmp_path / "ca.pem")
    assert client_security(ssl_only).keys() == {"security_protocol", "ssl_context"}
    assert credentials_to_aiokafka_auth(faust_credentials(ssl_only))["security_protocol"] == "SSL"


def test_broker_secrets_are_private_and_kept(tmp_path: Path) -> None:
    d = tmp_path / "secrets"
    (d).mkdir()
    (d / f"{secure_broker.READER}.password").write_text("chosen-by-me\n")
    secure_broker.ensure_certificates(d, ["127.0.0.1"])
    passwords = {u: secure_broker.ensure_password(d, u) for u in secure_broker.USERS}
    assert passwords[secure_broker.READER] == "chosen-by-me"
    assert len(set(passwords.values())) == len(secure_broker.USERS)
    for f in ["ca.key", "broker.pem", *(f"{u}.password" for u in secure_broker.USERS)]:
        assert stat.S_IMODE((d / f).stat().st_mode) == 0o600, f
    assert stat.S_IMODE(d.stat().st_mode) == 0o700

    # The broker's chain verifies against the CA, for the host it was issued for.
    ca = ssl.create_default_context(cafile=str(d / "ca.pem"))
    assert ca.cert_store_stats()["x509_ca"] == 1
    before = (d / "broker.pem").read_bytes()
    secure_broker.ensure_certificates(d, ["127.0.0.1"])
    assert (d / "broker.pem").read_bytes() == before  # reused
    secure_broker.ensure_certificates(d, ["10.1.2.3"])
    assert (d / "broker.pem").read_bytes() != before  # re-issued for a new host
    assert passwords == {u: secure_broker.ensure_password(d, u) for u in secure_broker.USERS}


def test_scram_arguments_carry_only_the_salted_password() -> None:
    import base64
    import hashlib

    salt = b"0123456789abcdef"
    arg = secure_broker.scram_argument("bob", "pw-bob", salt)
    assert "pw-bob" not in arg
    m = re.fullmatch(
        r'SCRAM-SHA-512=\[name=bob,iterations=(\d+),salt="([^"]+)",saltedpassword="([^"]+)"\]',
        arg,
    )
    assert m is not None
    iterations, b64salt, salted = int(m[1]), m[2], m[3]
    assert iterations >= 4096  # Kafka's minimum for SCRAM-SHA-512
    assert base64.b64decode(b64salt) == salt
    expected = hashlib.pbkdf2_hmac("sha512", b"pw-bob", salt, iterations)
    assert base64.b64decode(salted) == expected


def test_acls_follow_the_topic_settings() -> None:
    s = Settings(app_id="rec", input_topic="in", output_topic="out", dlq_topic="dlq")
    acls = secure_broker.acl_bindings(s)

    def rights(user: str) -> set[tuple[str, str, str, str]]:
        return {
            (a.resource_type, a.pattern_type, a.name, a.operation)
            for a in acls
            if a.principal == f"User:{user}"
        }

    assert rights(secure_broker.PRODUCER) == {("TOPIC", "LITERAL", "in", "WRITE")}
    assert rights(secure_broker.READER) == {
        ("TOPIC", "LITERAL", "out", "READ"),
        ("GROUP", "PREFIXED", "rec-reader", "READ"),
    }
    worker = rights(secure_broker.WORKER)
    for topic in [t.name for t in topic_specs(s)]:
        assert {("TOPIC", "LITERAL", topic, op) for op in ("READ", "WRITE", "CREATE")} <= worker
    assert ("TOPIC", "PREFIXED", "rec-", "CREATE") in worker  # Faust's changelogs
    assert ("GROUP", "LITERAL", "rec", "READ") in worker
    assert not any(a.principal == f"User:{secure_broker.ADMIN}" for a in acls)  # super user
