"""Local Kafka and Redis configured the way production should be: TLS and authentication.

* :func:`make_tls` writes a throw-away certificate authority and a server certificate for
  ``127.0.0.1``/``localhost`` with the ``openssl`` command (PEM files, mode 0600 keys).
* :class:`SecureKafkaBroker` is a KRaft node whose only client listener is ``SASL_SSL``
  with SCRAM-SHA-512; its users (and the broker's own inter-broker user) are created when
  the storage is formatted (``kafka-storage format --add-scram``), so no plaintext door
  exists, not even for the broker itself.
* :class:`SecureRedisServer` is a ``redis-server`` that speaks TLS only (``port 0``,
  ``tls-port``), with the ``default`` user disabled and ACL users instead.

Both bind 127.0.0.1. They exist to test riskstream's security settings
(``RISKSTREAM_KAFKA_SECURITY_PROTOCOL`` ..., ``RISKSTREAM_REDIS_USERNAME`` ...,
``RISKSTREAM_REDIS_SSL_CAFILE``) against real servers, and for local development.
"""

from __future__ import annotations

import os
import subprocess
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.services import kafka_admin
from engine.services.errors import ServiceStartError
from engine.services.install import find_binary
from engine.services.kafka import KafkaBroker
from engine.services.kafka_listeners import CONTROLLER, Listener
from engine.services.ports import LOOPBACK, free_port, port_open
from engine.services.redis import RedisServer

SCRAM = "SCRAM-SHA-512"
BROKER_USER = "broker"


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files of a local certificate authority and one server certificate."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    """Unencrypted PKCS#8 private key (mode 0600)."""
    server_bundle: Path
    """Key followed by the certificate: a PEM key store for Kafka."""


def _openssl(*args: str | Path) -> None:
    result = subprocess.run(
        [str(find_binary("openssl")), *map(str, args)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise ServiceStartError(f"openssl {args[0]} failed: {result.stderr.strip()[-2000:]}")


def make_tls(directory: Path, *, days: int = 7) -> TlsFiles:
    """A new CA and a server certificate for 127.0.0.1 and localhost, signed by it.

    Keys are RSA 2048 (every client and server here reads them); the server certificate
    carries ``subjectAltName = IP:127.0.0.1, DNS:localhost`` so hostname checks pass.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = d / "ca.key", d / "ca.pem"
    key, csr, cert = d / "server.key", d / "server.csr", d / "server.pem"
    ext = d / "server.ext"
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", ca_key)
    _openssl(
        "req", "-x509", "-new", "-key", ca_key, "-sha256", "-days", str(days),
        "-subj", "/CN=riskstream local CA", "-out", ca_cert,
    )  # fmt: skip
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key)
    _openssl("req", "-new", "-key", key, "-subj", "/CN=localhost", "-out", csr)
    ext.write_text(
        "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
        "keyUsage = digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth\n"
    )
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
        "-days", str(days), "-sha256", "-extfile", ext, "-out", cert,
    )  # fmt: skip
    bundle = d / "server-bundle.pem"
    bundle.write_text(key.read_text() + cert.read_text())
    for secret in (ca_key, key, bundle):
        os.chmod(secret, 0o600)
    return TlsFiles(ca_cert, cert, key, bundle)


class SecureKafkaBroker(KafkaBroker):
    """A KRaft node whose client listener is ``SASL_SSL`` (SCRAM-SHA-512) on 127.0.0.1.

    Parameters
    ----------
    state_dir
        As for :class:`KafkaBroker`.
    tls
        Certificates from :func:`make_tls`.
    users
        ``{username: password}`` created as SCRAM-SHA-512 credentials at format time.
    broker_password
        Password of the broker's own user (inter-broker traffic also authenticates).
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        tls: TlsFiles,
        users: Mapping[str, str],
        broker_password: str,
        **options: Any,
    ) -> None:
        for name, password in {**users, BROKER_USER: broker_password}.items():
            if not name.isalnum() or any(c in password for c in '"\\,=[] \n'):
                raise ValueError(f"user {name!r}: names alphanumeric, passwords without quoting")
        self.tls = tls
        self.users = dict(users)
        self.broker_password = broker_password
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{BROKER_USER}" password="{broker_password}";'
        )
        listeners = (
            Listener(
                "SASL_SSL",
                free_port(),
                "SASL_SSL",
                settings={
                    "sasl.enabled.mechanisms": SCRAM,
                    f"{SCRAM.lower()}.sasl.jaas.config": jaas,
                },
            ),
            Listener(CONTROLLER, free_port(), "PLAINTEXT", controller=True),
        )
        properties = {
            "sasl.mechanism.inter.broker.protocol": SCRAM,
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(tls.server_bundle),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(tls.ca_cert),
            "ssl.client.auth": "none",
            **options.pop("properties", {}),
        }
        super().__init__(state_dir, listeners=listeners, properties=properties, **options)

    def format_arguments(self) -> list[str]:
        users = {**self.users, BROKER_USER: self.broker_password}
        args: list[str] = []
        for name, password in users.items():
            args += ["--add-scram", f"{SCRAM}=[name={name},password={password}]"]
        return args

    def client_config(self, username: str, password: str | None = None) -> dict[str, Any]:
        """kafka-python settings of a client logging in as ``username``."""
        import ssl

        return {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": SCRAM,
            "sasl_plain_username": username,
            "sasl_plain_password": self.users[username] if password is None else password,
            "ssl_context": ssl.create_default_context(cafile=str(self.tls.ca_cert)),
        }

    def settings_env(self, username: str, password: str | None = None) -> dict[str, str]:
        """``RISKSTREAM_KAFKA_*`` variables of a riskstream process logging in as ``username``."""
        return {
            "RISKSTREAM_KAFKA_BOOTSTRAP": self.bootstrap,
            "RISKSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "RISKSTREAM_KAFKA_SASL_MECHANISM": SCRAM,
            "RISKSTREAM_KAFKA_SASL_USERNAME": username,
            "RISKSTREAM_KAFKA_SASL_PASSWORD": self.users[username]
            if password is None
            else password,
            "RISKSTREAM_KAFKA_SSL_CAFILE": str(self.tls.ca_cert),
        }

    def probe(self) -> bool:
        if not port_open(self.port, self.client.host):
            return False
        config = self.client_config(BROKER_USER, self.broker_password)
        with kafka_admin.admin_client(self.bootstrap, timeout_ms=2_000, **config) as admin:
            admin.list_topics()
            ids = {int(b["broker_id"]) for b in admin.describe_cluster()["brokers"]}
        return self.node_id in ids


class SecureRedisServer(RedisServer):
    """``redis-server`` speaking TLS only, ``default`` user off, ACL users.

    Parameters
    ----------
    state_dir
        As for :class:`RedisServer`.
    tls
        Certificates from :func:`make_tls`.
    users
        ``{username: (password, rules)}``, rules in ACL syntax, e.g.
        ``"~riskstream:* &riskstream:* +@all -@dangerous"``.
    admin
        The user :meth:`client` logs in as by default (for test setup: flush, inspect).
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        tls: TlsFiles,
        users: Mapping[str, tuple[str, str]],
        admin: str,
        **options: Any,
    ) -> None:
        super().__init__(state_dir, **options)
        for name, (password, _rules) in users.items():
            if not name.replace("-", "").isalnum() or not password.isalnum():
                raise ValueError(f"user {name!r}: names and passwords alphanumeric")
        if admin not in users:
            raise ValueError(f"admin user {admin!r} is not among the users")
        self.tls = tls
        self.users = dict(users)
        self.admin = admin

    def config(self) -> str:
        lines = [
            line
            for line in super().config().splitlines()
            if not line.startswith(("port ", "requirepass "))
        ]
        lines += [
            "port 0",
            f"tls-port {self.port}",
            f"tls-cert-file {self.tls.server_cert}",
            f"tls-key-file {self.tls.server_key}",
            f"tls-ca-cert-file {self.tls.ca_cert}",
            "tls-auth-clients no",
            "user default off",
        ]
        for name, (password, rules) in self.users.items():
            lines.append(f"user {name} on >{password} {rules}")
        return "\n".join(lines) + "\n"

    def url_for(self, db: int = 0) -> str:
        """``rediss://127.0.0.1:<port>/<db>``, no credentials (they go in separate settings)."""
        return f"rediss://{LOOPBACK}:{self.port}/{db}"

    def settings_env(self, username: str, password: str | None = None) -> dict[str, str]:
        """``RISKSTREAM_REDIS_*`` variables of a riskstream process logging in as ``username``."""
        return {
            "RISKSTREAM_REDIS_URL": self.url,
            "RISKSTREAM_REDIS_USERNAME": username,
            "RISKSTREAM_REDIS_PASSWORD": self.users[username][0] if password is None else password,
            "RISKSTREAM_REDIS_SSL_CAFILE": str(self.tls.ca_cert),
        }

    def client(self, db: int = 0, **kwargs: Any) -> Any:
        """A ``redis.Redis`` client over TLS, logged in as the admin user (the caller closes it)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import redis

        options = {
            "username": self.admin,
            "password": self.users[self.admin][0],
            "ssl_ca_certs": str(self.tls.ca_cert),
            **kwargs,
        }
        return redis.Redis.from_url(self.url_for(db), **options)
