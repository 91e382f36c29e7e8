"""Certificates made on the spot for tests: a client certificate with its encrypted key, and a stranger CA."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _self_signed(common_name: str, *, ca: bool) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return key, builder.sign(key, hashes.SHA256())


def other_ca_pem() -> str:
    """A self-signed CA that did not sign the broker's certificate."""
    return _self_signed("someone-else", ca=True)[1].public_bytes(serialization.Encoding.PEM).decode()


def client_certificate(key_password: str) -> dict[str, str]:
    """ssl.certificate.pem (self-signed), ssl.key.pem (encrypted with key_password) and ssl.key.password."""
    key, certificate = _self_signed("infometis-operator", ca=False)
    encryption = serialization.BestAvailableEncryption(key_password.encode())
    return {
        "ssl.certificate.pem": certificate.public_bytes(serialization.Encoding.PEM).decode(),
        "ssl.key.pem": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        ).decode(),
        "ssl.key.password": key_password,
    }
