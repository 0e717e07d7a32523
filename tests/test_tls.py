"""TLS between the gRPC services: a throwaway CA made with `cryptography`, the whole stack started
with mutual TLS, an image sent through the gateway; plaintext and certificate-less clients refused."""
from __future__ import annotations

import datetime
import ipaddress

import grpc
import httpx
import pytest

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

from sccdm.serving.config import ConfigError  # noqa: E402
from sccdm.serving.tls import TLSFiles  # noqa: E402


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn="sccdm test CA"):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn)).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_leaf(ca_key, ca_cert, cn="sccdm service"):
    """One certificate for servers and the gateway's client side: SAN 127.0.0.1 + localhost, both EKUs."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def pem_cert(c):
    return c.public_bytes(serialization.Encoding.PEM)


def pem_key(k):
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca_key, ca = make_ca()
    key, cert = make_leaf(ca_key, ca)
    other_ca_key, other_ca = make_ca("someone else's CA")
    okey, ocert = make_leaf(other_ca_key, other_ca, "intruder")
    files = {"ca": pem_cert(ca), "cert": pem_cert(cert), "key": pem_key(key), "other_ca": pem_cert(other_ca),
             "other_cert": pem_cert(ocert), "other_key": pem_key(okey)}
    paths = {}
    for k, v in files.items():
        (d / f"{k}.pem").write_bytes(v)
        paths[k] = str(d / f"{k}.pem")
    return {"files": files, "paths": paths}


@pytest.fixture(scope="module")
def tls_stack(pki, tmp_path_factory):
    from conftest_stack import started_stack

    env = {"SCCDM_DEVICE": "cpu", "SCCDM_MODEL": "deepjscc-cpu", "SCCDM_TLS_CA": pki["paths"]["ca"],
           "SCCDM_TLS_CERT": pki["paths"]["cert"], "SCCDM_TLS_KEY": pki["paths"]["key"], "SCCDM_MAX_UPLOAD_MB": "2"}
    yield from started_stack(env, tmp_path_factory.mktemp("tls-logs"), 240, "TLS stack", metrics=False)


def health(channel, service="sccdm.v1.Transmitter"):
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    with channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=5)


def test_image_through_the_tls_stack(tls_stack, make_png):
    data, _ = make_png(32, 32)
    r = httpx.post(tls_stack.gateway_url + "/v1/transmit", files={"image": ("x.png", data)},
                   data={"seed": "4", "refine": "false", "snr_db": "8"}, timeout=60)
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["model"] == "deepjscc-cpu" and rep["width"] == 32 and rep["psnr_db"] > 5
    assert "listening" in tls_stack.log_tail("receiver", 50) and '"tls": "mutual"' in tls_stack.log_tail("receiver", 50)


def test_mtls_client_with_the_right_certificate_is_served(tls_stack, pki):
    f = pki["files"]
    creds = grpc.ssl_channel_credentials(root_certificates=f["ca"], private_key=f["key"], certificate_chain=f["cert"])
    for name in ("transmitter", "channel", "receiver"):
        r = health(grpc.secure_channel(tls_stack.addr(name), creds), "")
        assert r.status == 1, name  # SERVING


@pytest.mark.parametrize("who", ["plaintext", "no client cert", "cert from another CA", "server not trusted"])
def test_other_clients_are_refused(tls_stack, pki, who):
    f = pki["files"]
    addr = tls_stack.addr("transmitter")
    if who == "plaintext":
        ch = grpc.insecure_channel(addr)
    elif who == "no client cert":
        ch = grpc.secure_channel(addr, grpc.ssl_channel_credentials(root_certificates=f["ca"]))
    elif who == "cert from another CA":
        ch = grpc.secure_channel(addr, grpc.ssl_channel_credentials(
            root_certificates=f["ca"], private_key=f["other_key"], certificate_chain=f["other_cert"]))
    else:  # the client trusts only another CA: it must not talk to our server
        ch = grpc.secure_channel(addr, grpc.ssl_channel_credentials(
            root_certificates=f["other_ca"], private_key=f["key"], certificate_chain=f["cert"]))
    with pytest.raises(grpc.RpcError) as e:
        health(ch)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE


def test_tls_settings_are_checked(pki, tmp_path):
    p = pki["paths"]
    assert TLSFiles.from_env({}).server_credentials() is None and TLSFiles.from_env({}).channel_credentials() is None
    t = TLSFiles.from_env({"SCCDM_TLS_CA": p["ca"]})
    assert t.client_enabled and not t.server_enabled
    with pytest.raises(ConfigError, match="must be set together"):
        TLSFiles.from_env({"SCCDM_TLS_CERT": p["cert"]})
    with pytest.raises(ConfigError, match="cannot be read"):
        TLSFiles.from_env({"SCCDM_TLS_CA": str(tmp_path / "missing.pem")})
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(ConfigError, match="not a PEM file"):
        TLSFiles.from_env({"SCCDM_TLS_CERT": str(tmp_path / "junk.pem"), "SCCDM_TLS_KEY": p["key"]})
