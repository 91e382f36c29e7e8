"""`make run`'s last step: send a few user events through the samples' pipeline and show what reached the index.

The events go to the user-events topic; the NiFiFlow sample takes them into
the user-profiles index, keyed by user_id, so running this again rewrites the
same documents rather than adding more.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from datetime import UTC, datetime

from confluent_kafka import Producer

TOPIC, INDEX = "user-events", "user-profiles"
USERS = ("ada", "grace", "linus")
TIMEOUT_SECONDS = 120


def send_events(bootstrap_servers: str, now: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap_servers})
    for user in USERS:
        event = {"user_id": user, "email": f"{user}@example.com", "created_at": now}
        # Keyed by user: one user's events stay in order in one partition.
        producer.produce(TOPIC, json.dumps(event).encode(), key=user.encode())
    if producer.flush(30):
        raise SystemExit(f"Kafka did not take the events within 30 s ({bootstrap_servers})")


def indexed(search_url: str, sent_at: str) -> list[dict[str, object]]:
    """This run's documents: a run before this one left the same ids, with an older created_at."""
    body = json.dumps({"ids": list(USERS)}).encode()
    request = urllib.request.Request(
        f"{search_url}/{INDEX}/_mget", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        documents = json.loads(response.read())["docs"]
    return [doc["_source"] for doc in documents if doc.get("found") and doc["_source"]["created_at"] == sent_at]


def main() -> int:
    search_url = os.environ["ELASTICSEARCH_URL"]
    sent_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    send_events(os.environ["KAFKA_BOOTSTRAP_SERVERS"], sent_at)
    print(f"[run] sent {len(USERS)} events to {TOPIC}; waiting for NiFi to index them in {INDEX}", file=sys.stderr)
    deadline = time.monotonic() + TIMEOUT_SECONDS
    found: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        found = indexed(search_url, sent_at)
        if len(found) == len(USERS):
            break
        time.sleep(1)
    for document in found:
        print(json.dumps(document))
    if len(found) < len(USERS):
        print(f"[run] only {len(found)} of {len(USERS)} in {INDEX} after {TIMEOUT_SECONDS}s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
