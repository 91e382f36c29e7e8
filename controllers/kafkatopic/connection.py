"""What a Kafka connection Secret (spec.clusterRef) may hold: librdkafka properties, only those a connection needs.

librdkafka also has properties that fetch tokens over HTTP from a URL
(sasl.oauthbearer.*), read the operator's own files (*.location), load code
(plugin.library.paths), print credentials and traffic (debug) or tune the
operator's sockets and buffers; none of those is a tenant's to set.
"""

from __future__ import annotations

from controllers.core.connections import ConnectionSchema

_FILE = "names a file on the operator's own filesystem, which a Secret may not make it read: give the PEM inline as {}"

KAFKA_CONNECTION = ConnectionSchema(
    service="Kafka",
    keys={
        "bootstrap.servers": "the brokers to connect to first, host:port[,host:port...]",
        "security.protocol": "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
        "sasl.mechanism": "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512: the username/password mechanisms",
        "sasl.mechanisms": "librdkafka's older name for sasl.mechanism",
        "sasl.username": "who the operator authenticates as",
        "sasl.password": "that user's password",
        "ssl.ca.pem": "the CA certificate(s) the brokers' certificates are checked against",
        "ssl.certificate.pem": "the operator's client certificate, for brokers that require mutual TLS",
        "ssl.key.pem": "that certificate's private key",
        "ssl.key.password": "the passphrase of an encrypted ssl.key.pem",
        "ssl.endpoint.identification.algorithm": "https (the default) checks the broker's hostname; none skips it",
        "client.id": "how brokers' logs and quotas name the operator",
    },
    secret=frozenset({"sasl.password", "ssl.key.pem", "ssl.key.password"}),
    required=("bootstrap.servers",),
    default_flag="--kafka-bootstrap-servers",
    default_env="KAFKA_BOOTSTRAP_SERVERS",
    default_key="bootstrap.servers",
    refused={
        "ssl.ca.location": _FILE.format("ssl.ca.pem"),
        "ssl.certificate.location": _FILE.format("ssl.certificate.pem"),
        "ssl.key.location": _FILE.format("ssl.key.pem"),
    },
)
