"""What ``streamrec broker --secure`` adds to the embedded broker: TLS material,
SCRAM users, the broker's security properties and the ACLs of three principals.

Everything lives in one secrets directory (``STREAMREC_BROKER_SECRETS_DIR``,
default ``<home>/broker-secrets``), created at first run and reused after:

- ``ca.pem``: the local CA; clients trust it (``STREAMREC_KAFKA_SSL_CAFILE``);
- ``ca.key``, ``broker.pem`` (the broker's key and certificate chain, its PEM key store);
- ``<user>.password``: one generated password per SCRAM user (put your own in
  a file before the first start to choose it).

Keys and passwords are written 0600, the directory 0700.

>>> [a.operation for a in acl_bindings(Settings()) if a.principal == "User:" + PRODUCER]
['WRITE']
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stream_app.settings import Settings

log = logging.getLogger(__name__)

ADMIN = "streamrec-admin"  # the broker's own inter-broker principal: a super user
WORKER = "streamrec-worker"
PRODUCER = "streamrec-producer"
READER = "streamrec-reader"
USERS = (ADMIN, WORKER, PRODUCER, READER)
CLIENT_PRINCIPALS = (WORKER, PRODUCER, READER)
BROKER_CN = "streamrec-broker"  # its certificate's subject, also its controller principal
MECHANISM = "SCRAM-SHA-512"
SCRAM_ITERATIONS = 8192


def secrets_dir(settings: Settings) -> Path:
    return settings.broker_secrets_dir or settings.home / "broker-secrets"


def _write_private(path: Path, data: bytes) -> None:
    """Create ``path`` readable by its owner only (no window with wider modes)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# --- certificates ------------------------------------------------------------


def _names(hosts: list[str]) -> list[object]:
    from cryptography import x509

    out: list[object] = []
    for h in dict.fromkeys(["localhost", "127.0.0.1", *hosts]):
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            out.append(x509.DNSName(h))
    return out


def ensure_certificates(directory: Path, hosts: list[str]) -> None:
    """A CA (made once) and a broker certificate valid for ``hosts`` (re-issued
    when a host is new), as PEM files the broker reads directly."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca_pem, ca_key_pem, broker_pem = (
        directory / "ca.pem",
        directory / "ca.key",
        directory / "broker.pem",
    )
    hosts_file = directory / "broker.hosts"
    wanted = sorted(set(hosts))
    now = datetime.datetime.now(datetime.UTC)
    if not (ca_pem.exists() and ca_key_pem.exists()):
        _create_ca(ca_pem, ca_key_pem, now)
        broker_pem.unlink(missing_ok=True)  # signed by the old CA, if any
        log.info("created a local CA in %s", ca_pem)
    issued = hosts_file.read_text().split() if hosts_file.exists() else []
    if broker_pem.exists() and issued == wanted:
        return
    _issue_broker_certificate(ca_pem, ca_key_pem, broker_pem, wanted, now)
    hosts_file.write_text(" ".join(wanted) + "\n")
    log.info("issued the broker certificate for %s", ", ".join(wanted))


def _pkcs8_pem() -> dict[str, Any]:
    """``private_bytes`` arguments: an unencrypted PKCS#8 PEM key."""
    from cryptography.hazmat.primitives import serialization

    return {
        "encoding": serialization.Encoding.PEM,
        "format": serialization.PrivateFormat.PKCS8,  # the only form Kafka's PEM store reads
        "encryption_algorithm": serialization.NoEncryption(),
    }


def _create_ca(ca_pem: Path, ca_key_pem: Path, now: datetime.datetime) -> None:
    """A new self-signed CA, its key in ``ca_key_pem`` and its certificate in ``ca_pem``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "streamrec local CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(ca_key_pem, key.private_bytes(**_pkcs8_pem()))
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))


def _issue_broker_certificate(
    ca_pem: Path, ca_key_pem: Path, broker_pem: Path, hosts: list[str], now: datetime.datetime
) -> None:
    """A new broker key and certificate for ``hosts``, signed by the CA, written with
    the chain to ``broker_pem`` (the broker's PEM key store)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca = x509.load_pem_x509_certificate(ca_pem.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_pem.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, BROKER_CN)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(_names(hosts)), critical=False)  # type: ignore[arg-type]
        .add_extension(
            # server for clients; client when the broker talks to its controller
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(
        serialization.Encoding.PEM
    )
    _write_private(broker_pem, key.private_bytes(**_pkcs8_pem()) + chain)


# --- SCRAM users -------------------------------------------------------------


def password_file(directory: Path, user: str) -> Path:
    return directory / f"{user}.password"


def ensure_password(directory: Path, user: str) -> str:
    """The user's password from its file, generated (and stored 0600) at first use."""
    path = password_file(directory, user)
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        _write_private(path, (secrets.token_urlsafe(24) + "\n").encode())
    path.chmod(0o600)  # also a file the operator wrote with a wider mode
    password = path.read_text().rstrip("\r\n")
    if not password or any(c in password for c in '"\\\n'):
        raise ValueError(f"{path}: a password must be one line without quotes or backslashes")
    return password


def scram_argument(user: str, password: str, salt: bytes | None = None) -> str:
    """``kafka-storage format --add-scram`` value carrying only the salted password,
    so the password itself never appears on a command line."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, SCRAM_ITERATIONS)
    b64 = base64.b64encode
    return (
        f"{MECHANISM}=[name={user},iterations={SCRAM_ITERATIONS},"
        f'salt="{b64(salt).decode()}",saltedpassword="{b64(salted).decode()}"]'
    )


# --- broker properties -------------------------------------------------------


def secure_properties(
    host: str, port: int, controller_port: int, directory: Path, admin_password: str
) -> dict[str, str]:
    """Overrides of the plain properties: one SASL_SSL/SCRAM-SHA-512 client listener,
    a mutual-TLS controller listener, and StandardAuthorizer (deny unless allowed)."""
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{ADMIN}" password="{admin_password}";'
    )
    return {
        "listeners": f"SASL_SSL://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"SASL_SSL://{host}:{port}",
        "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:SSL",
        "inter.broker.listener.name": "SASL_SSL",
        "sasl.enabled.mechanisms": MECHANISM,
        "sasl.mechanism.inter.broker.protocol": MECHANISM,
        f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config": jaas,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(directory / "broker.pem"),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(directory / "ca.pem"),
        # SCRAM users live in the metadata the controller serves, so the controller
        # listener authenticates by certificate instead: only the broker holds one.
        "listener.name.controller.ssl.client.auth": "required",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{ADMIN};User:CN={BROKER_CN}",
        "allow.everyone.if.no.acl.found": "false",
        "auto.create.topics.enable": "false",
    }


def client_env(settings: Settings, user: str) -> dict[str, str]:
    """``STREAMREC_*`` variables that make a streamrec process connect as ``user``."""
    directory = secrets_dir(settings)
    return {
        "STREAMREC_KAFKA_BOOTSTRAP": settings.bootstrap,
        "STREAMREC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "STREAMREC_KAFKA_SASL_MECHANISM": MECHANISM,
        "STREAMREC_KAFKA_SASL_USERNAME": user,
        "STREAMREC_KAFKA_SASL_PASSWORD_FILE": str(password_file(directory, user)),
        "STREAMREC_KAFKA_SSL_CAFILE": str(directory / "ca.pem"),
    }


def as_user(settings: Settings, user: str) -> Settings:
    """``settings`` with the client security of ``user`` (its password read from its file)."""
    from stream_app.settings import SECRET_FIELDS

    # Secrets are already read (kept as SecretStr): drop their *_file twins.
    values = settings.model_dump(exclude={f"{name}_file" for name in SECRET_FIELDS})
    values.update(kafka_sasl_password=None, kafka_ssl_key_password=None)
    env = client_env(settings, user)
    values.update({k[len("STREAMREC_") :].lower(): v for k, v in env.items()})
    return Settings(**values)


# --- ACLs --------------------------------------------------------------------

# Kafka protocol codes (org.apache.kafka.common.acl / resource).
RESOURCE_TYPES = {"TOPIC": 2, "GROUP": 3, "CLUSTER": 4}
PATTERN_TYPES = {"LITERAL": 3, "PREFIXED": 4}
OPERATIONS = {
    "READ": 3,
    "WRITE": 4,
    "CREATE": 5,
    "DESCRIBE": 8,
    "DESCRIBE_CONFIGS": 10,
}
ALLOW = 3


@dataclass(frozen=True)
class Acl:
    """One ALLOW binding: ``principal`` may ``operation`` on a resource pattern."""

    principal: str
    resource_type: str
    pattern_type: str
    name: str
    operation: str


def reader_group_prefix(settings: Settings) -> str:
    return f"{settings.app_id}-reader"


def acl_bindings(settings: Settings) -> list[Acl]:
    """The three client principals' rights, derived from the topic settings.

    - worker: its topics (it reads the input, writes sweeps to it, writes output and
      DLQ, creates them at start), Faust's ``<app_id>-*`` changelog and assignor
      topics, and its consumer group ``<app_id>``. Its idempotent producer needs no
      IdempotentWrite: since Kafka 3.0 WRITE on any topic allows InitProducerId;
    - producer: write the input topic, nothing else;
    - reader: read the output topic, with consumer groups named ``<app_id>-reader*``.
    """
    from stream_app.kafka.admin import topic_specs

    worker, producer, reader = (f"User:{u}" for u in CLIENT_PRINCIPALS)
    topic_ops = ("READ", "WRITE", "CREATE", "DESCRIBE", "DESCRIBE_CONFIGS")
    acls = [
        Acl(worker, "TOPIC", "LITERAL", t.name, op)
        for t in topic_specs(settings)
        for op in topic_ops
    ]
    acls += [Acl(worker, "TOPIC", "PREFIXED", f"{settings.app_id}-", op) for op in topic_ops]
    acls.append(Acl(worker, "GROUP", "LITERAL", settings.app_id, "READ"))
    acls.append(Acl(producer, "TOPIC", "LITERAL", settings.input_topic, "WRITE"))
    acls.append(Acl(reader, "TOPIC", "LITERAL", settings.output_topic, "READ"))
    acls.append(Acl(reader, "GROUP", "PREFIXED", reader_group_prefix(settings), "READ"))
    return acls


async def create_acls(admin_settings: Settings, acls: list[Acl]) -> None:
    """Create ``acls`` (existing ones are left as they are) as a super user."""
    from aiokafka import AIOKafkaClient
    from aiokafka.protocol.admin import CreateAclsRequest

    from stream_app.kafka.clients import client_options

    client = AIOKafkaClient(**client_options(admin_settings), request_timeout_ms=30_000)
    await client.bootstrap()
    try:
        node = client.get_random_node()
        for acl in acls:
            request = CreateAclsRequest(
                RESOURCE_TYPES[acl.resource_type],
                acl.name,
                PATTERN_TYPES[acl.pattern_type],
                acl.principal,
                "*",
                OPERATIONS[acl.operation],
                ALLOW,
            )
            response = await client.send(node, request)
            for error_code, message in response.creation_responses:
                if error_code:
                    raise RuntimeError(f"creating ACL {acl} failed ({error_code}): {message}")
    finally:
        await client.close()
