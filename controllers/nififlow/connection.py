"""What a NiFi connection Secret (spec.clusterRef) may hold.

The REST API's URL, the CA bundle the server's certificate is checked
against, and either a client certificate (NiFi maps its DN to a user) or a
username and password (NiFi's token login). TLS verification stays on unless
the Secret turns it off in so many words. Nothing that makes the operator
read its own files or call other URLs.
"""

from __future__ import annotations

from controllers.core.connections import ConnectionSchema

URL = "url"
CA_CERTIFICATE = "ca.crt"
CLIENT_CERTIFICATE = "tls.crt"
CLIENT_KEY = "tls.key"
USERNAME = "username"
PASSWORD = "password"
INSECURE_SKIP_TLS_VERIFY = "insecureSkipTlsVerify"

_FILE = "names a file on the operator's own filesystem, which a Secret may not make it read: give the PEM itself"

NIFI_CONNECTION = ConnectionSchema(
    service="NiFi",
    keys={
        URL: "the REST API's base URL, http(s)://host:port/nifi-api",
        CA_CERTIFICATE: "PEM CA certificate(s) the server's certificate is checked against",
        CLIENT_CERTIFICATE: "a PEM client certificate NiFi maps to a user by its DN (with tls.key)",
        CLIENT_KEY: "the client certificate's PEM private key",
        USERNAME: "token login: who the operator logs in as (instead of a client certificate)",
        PASSWORD: "token login: that user's password",
        INSECURE_SKIP_TLS_VERIFY: "'true' turns off TLS certificate verification (never the default)",
    },
    secret=frozenset({CLIENT_KEY, PASSWORD}),
    required=(URL,),
    default_flag="--nifi-url",
    default_env="NIFI_URL",
    default_key=URL,
    refused={"caFile": _FILE, "certFile": _FILE, "keyFile": _FILE, "ssl_ca_cert": _FILE},
)
