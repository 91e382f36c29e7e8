"""/healthz follows the operator's own loops, /readyz what the API server and Kafka last said (a Kafka outage:
test_kafka_outage.py)."""

from __future__ import annotations

from urllib.request import urlopen

from confluent_kafka.admin import AdminClient, NewTopic

from tests.integration.conftest import RunningOperator
from tests.integration.helpers import describe, described_as, unique, wait_for

OWN_LOOPS = {
    "kafkatopic-worker",
    "kafkatopic-resync-worker",
    "kafkatopic-resync",
    "kafkatopic-unmanaged-report",
    "kafka-callbacks",
    "kubernetes-api-probe",
    "kafka-default-probe",
    "elasticsearchindex-worker",
    "elasticsearchindex-resync-worker",
    "elasticsearchindex-resync",
    "elasticsearchindex-unmanaged-report",
    "elasticsearch-clients",
    "elasticsearch-default-probe",
    "nififlow-worker",
    "nififlow-resync-worker",
    "nififlow-resync",
    "nififlow-unmanaged-report",
    "nifi-clients",
    "nifi-default-probe",
    "kafkatopic-permissions-check",
    "elasticsearchindex-permissions-check",
    "nififlow-permissions-check",
}


def test_liveness_names_every_loop_and_readiness_every_dependency(operator: RunningOperator) -> None:
    operator.wait_probe("/readyz", 200)
    status, body = operator.probe("/readyz")
    assert body == {
        "status": "ok",
        "failing": [],
        "checks": {
            "kafka-default": "ok",
            "elasticsearch-default": "ok",
            "nifi-default": "ok",
            "kubernetes-api": "ok",
            "kafkatopic-permissions": "ok",
            "elasticsearchindex-permissions": "ok",
            "nififlow-permissions": "ok",
        },
    }
    status, body = operator.probe("/healthz")
    assert status == 200
    assert body["status"] == "ok" and set(body["checks"]) == OWN_LOOPS


def test_topics_no_object_manages_are_listed_and_counted_and_left_alone(
    operator: RunningOperator, kafka_admin: AdminClient
) -> None:
    stray = unique("stray")
    kafka_admin.create_topics([NewTopic(stray, 1, 1)])[stray].result(timeout=15)
    described_as(kafka_admin, stray, lambda t: True)

    def listed() -> bool:
        listing = operator.probe("/unmanaged")[1]["kafkatopics"]
        return any(stray in names for names in listing.values())

    wait_for(listed, timeout=30, what=f"{stray} listed at /unmanaged")
    assert "managed by no KafkaTopic (left alone)" in operator.log()
    gauge = [
        line
        for line in urlopen(operator.metrics_url, timeout=5).read().decode().splitlines()
        if line.startswith("infometis_unmanaged_resources{") and 'kind="KafkaTopic"' in line
    ]
    assert gauge and all(float(line.split()[-1]) >= 1 for line in gauge)
    assert describe(kafka_admin, stray) is not None
