"""TLS for the gRPC links (transmitter, channel, receiver and the gateway's clients).

=====================  =====================================================================
SCCDM_TLS_CERT         PEM certificate (chain) of this process: a service's server certificate;
                       for the gateway (a client) its client certificate for mutual TLS
SCCDM_TLS_KEY          PEM private key of SCCDM_TLS_CERT
SCCDM_TLS_CA           PEM CA bundle. Services: client certificates must be signed by it
                       (mutual TLS: a client without one is refused). Clients: the CA that
                       signed the services' certificates (verification of the server)
SCCDM_TLS_SERVER_NAME  clients: host name expected in the services' certificates when the
                       address is not one (e.g. services reached by IP with a DNS-only cert)
=====================  =====================================================================

Nothing set: plaintext, as before. A service with CERT+KEY serves TLS only; with CA as
well it requires client certificates. A client switches to TLS when CA (or CERT) is set.
The Prometheus ports stay plain HTTP (they carry no image data).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import grpc

from .config import ConfigError


def _read(env, name: str) -> bytes | None:
    path = env.get(name, "").strip()
    if not path:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"{name}={path!r} cannot be read: {e.strerror}") from None
    if b"-----BEGIN" not in data:
        raise ConfigError(f"{name}={path!r} is not a PEM file")
    return data


@dataclass(frozen=True)
class TLSFiles:
    ca: bytes | None = None
    cert: bytes | None = None
    key: bytes | None = None
    server_name: str = ""

    @classmethod
    def from_env(cls, env=None) -> "TLSFiles":
        env = os.environ if env is None else env
        t = cls(ca=_read(env, "SCCDM_TLS_CA"), cert=_read(env, "SCCDM_TLS_CERT"), key=_read(env, "SCCDM_TLS_KEY"),
                server_name=env.get("SCCDM_TLS_SERVER_NAME", "").strip())
        if (t.cert is None) != (t.key is None):
            raise ConfigError("SCCDM_TLS_CERT and SCCDM_TLS_KEY must be set together")
        return t

    @property
    def server_enabled(self) -> bool:
        return self.cert is not None

    @property
    def client_enabled(self) -> bool:
        return self.ca is not None or self.cert is not None

    def server_credentials(self) -> grpc.ServerCredentials | None:
        """None when this service has no certificate (plaintext)."""
        if not self.server_enabled:
            return None
        return grpc.ssl_server_credentials([(self.key, self.cert)], root_certificates=self.ca,
                                           require_client_auth=self.ca is not None)

    def channel_credentials(self) -> grpc.ChannelCredentials | None:
        """None when the client has no TLS settings (plaintext)."""
        if not self.client_enabled:
            return None
        return grpc.ssl_channel_credentials(root_certificates=self.ca, private_key=self.key,
                                            certificate_chain=self.cert)

    def channel_options(self) -> list:
        return [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []


def aio_channel(addr: str, options: list, tls: TLSFiles) -> grpc.aio.Channel:
    creds = tls.channel_credentials()
    if creds is None:
        return grpc.aio.insecure_channel(addr, options=options)
    return grpc.aio.secure_channel(addr, creds, options=options + tls.channel_options())


def sync_channel(addr: str, options: list | None, tls: TLSFiles) -> grpc.Channel:
    creds = tls.channel_credentials()
    if creds is None:
        return grpc.insecure_channel(addr, options=options)
    return grpc.secure_channel(addr, creds, options=(options or []) + tls.channel_options())
