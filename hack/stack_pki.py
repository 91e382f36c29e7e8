"""Certificates and kubeconfig for the local API server, Kafka's TLS key store, and the secured
search and NiFi servers' certificates and key stores.

One CA signs the API server's, Kafka's and the secured search and NiFi servers'
serving certificates and every client certificate (the API server trusts it as
--client-ca-file). A separate RSA key
pair signs ServiceAccount tokens, so TokenRequest works and the operator can
run as its own ServiceAccount under real RBAC.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

VALIDITY = datetime.timedelta(days=3650)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(key: rsa.RSAPrivateKey, path: Path, *, pkcs8: bool = False) -> None:
    key_format = serialization.PrivateFormat.PKCS8 if pkcs8 else serialization.PrivateFormat.TraditionalOpenSSL
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, key_format, serialization.NoEncryption()))
    path.chmod(0o600)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _load_ca(pki: Path) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    cert = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return cert, key


def _issue(
    pki: Path,
    stem: str,
    subject: x509.Name,
    *,
    server_names: list[str] | None = None,
    also_client: bool = False,
    pkcs8: bool = False,
) -> None:
    ca_cert, ca_key = _load_ca(pki)
    key = _new_key()
    now = datetime.datetime.now(datetime.UTC)
    usages = [x509.ExtendedKeyUsageOID.SERVER_AUTH] if server_names else []
    if also_client or not server_names:
        usages.append(x509.ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if server_names:
        alt_names: list[x509.GeneralName] = []
        for name in server_names:
            try:
                alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alt_names.append(x509.DNSName(name))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    (pki / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, pki / f"{stem}.key", pkcs8=pkcs8)


def ensure_pki(pki: Path) -> None:
    """Creates the CA, serving, admin and ServiceAccount-signing material once."""
    pki.mkdir(parents=True, exist_ok=True)
    if not (pki / "ca.crt").exists():
        key = _new_key()
        now = datetime.datetime.now(datetime.UTC)
        subject = _name("infometis-local-ca")
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
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
            .sign(key, hashes.SHA256())
        )
        _write_key(key, pki / "ca.key")
        (pki / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if not (pki / "apiserver.crt").exists():
        _issue(
            pki,
            "apiserver",
            _name("kube-apiserver"),
            server_names=[
                "127.0.0.1",
                "localhost",
                "10.0.0.1",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
        )
    if not (pki / "admin.crt").exists():
        _issue(pki, "admin", _name("admin", "system:masters"))
    if not (pki / "service-account.key").exists():
        key = _new_key()
        _write_key(key, pki / "service-account.key")
        (pki / "service-account.pub").write_bytes(
            key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )


def ensure_kafka_keystore(pki: Path) -> Path:
    """A PEM key store for Kafka's TLS listener: PKCS#8 key, then the certificate chain."""
    ensure_pki(pki)
    keystore = pki / "kafka-keystore.pem"
    if not keystore.exists():
        _issue(pki, "kafka", _name("kafka"), server_names=["127.0.0.1", "localhost"])
        key = serialization.load_pem_private_key((pki / "kafka.key").read_bytes(), password=None)
        pkcs8 = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        keystore.write_bytes(pkcs8 + (pki / "kafka.crt").read_bytes() + (pki / "ca.crt").read_bytes())
        keystore.chmod(0o600)
    return keystore


def ensure_search_tls(pki: Path, stem: str) -> tuple[str, str]:
    """The secured search server's certificates; its node's DN and its admin's.

    STEM.crt/.key serve HTTPS on 127.0.0.1 and localhost and are also the node's
    transport identity (TLS between nodes is mandatory with the OpenSearch
    security plugin, even for one node), so they can act as client too;
    STEM-admin.crt/.key are the plugin's admin (securityadmin, the security REST
    API). The plugin takes PKCS#8 keys only. The DNs are as the plugin (Java's
    RFC 2253 form) prints them.
    """
    ensure_pki(pki)
    return ensure_server_certificate(pki, stem), ensure_client_certificate(pki, f"{stem}-admin", f"{stem}-admin")


def ensure_server_certificate(pki: Path, stem: str) -> str:
    """STEM.crt/.key (PKCS#8), CN=STEM,O=infometis: serves 127.0.0.1 and localhost, may act as client too; its DN."""
    ensure_pki(pki)
    if not (pki / f"{stem}.crt").exists():
        _issue(pki, stem, _dn(stem, "infometis"), server_names=["127.0.0.1", "localhost"], also_client=True, pkcs8=True)
    return _subject(pki / f"{stem}.crt")


def ensure_client_certificate(pki: Path, stem: str, common_name: str) -> str:
    """STEM.crt/.key (PKCS#8), a client certificate for CN=common_name,O=infometis; its DN."""
    ensure_pki(pki)
    if not (pki / f"{stem}.crt").exists():
        _issue(pki, stem, _dn(common_name, "infometis"), pkcs8=True)
    return _subject(pki / f"{stem}.crt")


def write_pkcs12_stores(pki: Path, stem: str, password: str) -> tuple[Path, Path]:
    """A Java PKCS#12 key store with STEM's key and certificate chain, and a trust store with the CA.

    Written on every call (cheap), so they always open with `password`.
    """
    ca_cert, _ = _load_ca(pki)
    cert = x509.load_pem_x509_certificate((pki / f"{stem}.crt").read_bytes())
    key = serialization.load_pem_private_key((pki / f"{stem}.key").read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    encryption = serialization.BestAvailableEncryption(password.encode())
    keystore, truststore = pki / f"{stem}-keystore.p12", pki / f"{stem}-truststore.p12"
    keystore.write_bytes(pkcs12.serialize_key_and_certificates(stem.encode(), key, cert, [ca_cert], encryption))
    # Java trusts only certificates marked as trusted entries, which this serializer writes.
    trusted = [pkcs12.PKCS12Certificate(ca_cert, b"infometis-local-ca")]
    truststore.write_bytes(pkcs12.serialize_java_truststore(trusted, encryption))
    for store in (keystore, truststore):
        store.chmod(0o600)
    return keystore, truststore


def _dn(common_name: str, organization: str) -> x509.Name:
    """CN=common_name,O=organization: the organization first in the certificate, as is usual."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _subject(path: Path) -> str:
    return x509.load_pem_x509_certificate(path.read_bytes()).subject.rfc4514_string()


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def ensure_kubernetes_client_certificate(pki: Path, stem: str, user: str, group: str) -> None:
    """STEM.crt/.key: a client certificate the API server (or a kubelet) reads as `user` in `group`."""
    ensure_pki(pki)
    if not (pki / f"{stem}.crt").exists():
        _issue(pki, stem, _name(user, group))


def write_admin_kubeconfig(pki: Path, server: str, path: Path) -> None:
    """A self-contained kubeconfig (certificates embedded) for the admin user."""
    write_client_kubeconfig(pki, server, path, "admin")


def write_client_kubeconfig(pki: Path, server: str, path: Path, stem: str) -> None:
    """A self-contained kubeconfig (certificates embedded) with the client certificate STEM.crt."""
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
- name: infometis-local
  cluster:
    server: {server}
    certificate-authority-data: {_b64(pki / "ca.crt")}
users:
- name: {stem}
  user:
    client-certificate-data: {_b64(pki / f"{stem}.crt")}
    client-key-data: {_b64(pki / f"{stem}.key")}
contexts:
- name: infometis-local
  context:
    cluster: infometis-local
    user: {stem}
    namespace: default
current-context: infometis-local
"""
    )
    path.chmod(0o600)
