"""What an Elasticsearch or OpenSearch connection Secret (spec.clusterRef) may hold.

One URL, either basic auth or an API key, and the CA bundle the server's
certificate is checked against. TLS verification stays on unless the Secret
turns it off in so many words. Nothing that makes the operator read its own
files or call other URLs.
"""

from __future__ import annotations

from controllers.core.connections import ConnectionSchema

URL = "url"
USERNAME = "username"
PASSWORD = "password"
API_KEY = "apiKey"
CA_CERTIFICATE = "ca.crt"
INSECURE_SKIP_TLS_VERIFY = "insecureSkipTlsVerify"

_FILE = "names a file on the operator's own filesystem, which a Secret may not make it read: give the PEM as ca.crt"

SEARCH_CONNECTION = ConnectionSchema(
    service="Elasticsearch",
    keys={
        URL: "the cluster's URL, http(s)://host:port (Elasticsearch or OpenSearch: the server says which)",
        USERNAME: "basic auth: who the operator authenticates as",
        PASSWORD: "basic auth: that user's password",
        API_KEY: "an API key (the encoded id:key the server issued), instead of basic auth",
        CA_CERTIFICATE: "PEM CA certificate(s) the server's certificate is checked against",
        INSECURE_SKIP_TLS_VERIFY: "'true' turns off TLS certificate verification (never the default)",
    },
    secret=frozenset({PASSWORD, API_KEY}),
    required=(URL,),
    default_flag="--elasticsearch-url",
    default_env="ELASTICSEARCH_URL",
    default_key=URL,
    refused={"ca_certs": _FILE, "caFile": _FILE, "ca.path": _FILE},
)
