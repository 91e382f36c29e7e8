"""The TLS context of a connection whose Secret may give a CA bundle and may turn verification off."""

from __future__ import annotations

import ssl

from controllers.core.connections import ClusterRefInvalid, Connection


def verifying_context(connection: Connection, *, ca_key: str, insecure_key: str) -> ssl.SSLContext:
    """Certificates checked against the Secret's CA bundle (else the system's), hostname included, unless
    the Secret says `insecure_key: "true"` in so many words."""
    properties = connection.properties
    insecure = properties.get(insecure_key, "false").strip().lower()
    if insecure not in ("true", "false"):
        raise ClusterRefInvalid(f"{connection.name}: {insecure_key} must be 'true' or 'false'")
    context = ssl.create_default_context()
    if properties.get(ca_key):
        try:
            context.load_verify_locations(cadata=properties[ca_key])
        except (ssl.SSLError, ValueError) as error:
            raise ClusterRefInvalid(f"{connection.name}: {ca_key} is not a PEM certificate: {error}") from None
    if insecure == "true":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
