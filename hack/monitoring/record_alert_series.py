"""Record the operator's /metrics on the live stack as the input series of the alert rules' tests.

Runs three operator processes against the stack, in a namespace of its own (alert-record-*), and
scrapes each every INTERVAL seconds while it puts KafkaTopics through what the alerts are about:

- kafka-0 and kafka-1: the Kafka controller, two replicas electing a leader on a Lease in the namespace.
  kafka-0 leads; kafka-1 waits, then takes over when kafka-0 stops (a handover, which alerts nothing).
- elasticsearch-0: the Elasticsearch controller with its Lease in a namespace that does not exist, so
  it can never lead: a controller up but with no leader.
- Topics: one healthy; one Stalled (Kafka refuses its config); one whose cluster cannot be reached
  (clusterRef to a closed port: retried with backoff, its service requests failing); one with
  driftPolicy Report whose config is changed behind the operator's back (Drifted, not corrected); one
  with approval Manual that waits for a ChangeApproval none gives (AwaitingApproval).
  At FIX the four faults are undone (the waiting topic is deleted); at HANDOVER kafka-0 stops; at STOP
  every process stops.

The alert rules wait 10 to 30 minutes before they fire, longer than a recording should hold the
shared stack. So the written series hold the broken state for HOLD more samples just before FIX:
gauges keep their last recorded value and counters go on at the rate recorded over the last
minute. Everything before and after is as scraped; the file says where the hold is.

Writes config/monitoring/tests/recorded-series.yaml. Run it on the stack, holding the stack's lock:

    eval "$(hack/stack env)"
    flock /tmp/infometis-integration.lock .venv/bin/python hack/monitoring/record_alert_series.py
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "config" / "monitoring" / "tests" / "recorded-series.yaml"
JOB = "infometis-operator-metrics"  # the metrics Service's name, as a ServiceMonitor would set job

INTERVAL = 10  # seconds between scrapes
BREAK = 3  # after this sample: the stalled, unreachable and report-drift topics are applied
DRIFT = 6  # the drift topic's config is changed out of band (it is Ready by then)
FIX = 21  # the faults are undone; the hold goes in before this sample
HANDOVER = 27  # kafka-0 stops; kafka-1 takes the Lease
STOP = 30  # every process stops; this sample finds none
HOLD = 180  # samples of held broken state: 30 minutes
RATE_WINDOW = 6  # samples a counter's held rate is measured over

CONFIG = {"retention.ms": "3600000"}
OUT_OF_BAND = {"retention.ms": "7200000"}


@dataclass
class Operator:
    name: str
    process: subprocess.Popen[bytes]
    metrics_port: int
    health_port: int

    def get(self, port: int, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, ""
        except OSError:
            return 0, ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def say(message: str) -> None:
    print(f"[record] {message}", file=sys.stderr, flush=True)


def kubectl(*args: str, stdin: str | None = None) -> str:
    return subprocess.run(["kubectl", *args], input=stdin, text=True, capture_output=True, check=True).stdout


def apply(namespace: str, manifest: dict[str, object]) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(manifest))


def topic(name: str, **spec: object) -> dict[str, object]:
    return {
        "apiVersion": "infometis.io/v1alpha1",
        "kind": "KafkaTopic",
        "metadata": {"name": name},
        "spec": {"partitions": 1, "replicationFactor": 1, **spec},
    }


def set_config(admin: AdminClient, name: str, config: dict[str, str]) -> None:
    """Change a topic's config on Kafka directly, as another tool would."""
    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in config.items()]
    resource = ConfigResource(ResourceType.TOPIC, name, incremental_configs=entries)
    admin.incremental_alter_configs([resource])[resource].result(timeout=15)


def start(name: str, namespace: str, log_dir: Path, *args: str) -> Operator:
    metrics_port, health_port = free_port(), free_port()
    with (log_dir / f"{name}.log").open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "controllers",
                "--namespace", namespace,
                "--resync-interval", "10s",
                "--metrics-port", str(metrics_port),
                "--health-port", str(health_port),
                "--leader-election", "true",
                *args,
            ],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return Operator(name, process, metrics_port, health_port)


def wait_for(what: str, condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"[record] gave up waiting for {what}")
        time.sleep(0.5)


def scrape(operator: Operator) -> dict[str, tuple[bool, float]]:
    """Each infometis_* sample as `name{labels}` -> (is a counter, value); empty when nothing answers."""
    status, text = operator.get(operator.metrics_port, "/metrics")
    if status != 200:
        return {}
    samples: dict[str, tuple[bool, float]] = {}
    for family in text_string_to_metric_families(text):
        if not family.name.startswith("infometis_"):
            continue
        for sample in family.samples:
            if sample.name.endswith(("_created", "_bucket")):
                continue  # the alerts and their tests use neither
            # As Prometheus stores them: its target labels, the sample's own of those names renamed.
            own = {f"exported_{k}" if k in ("job", "instance") else k: v for k, v in sample.labels.items()}
            labels = {**own, "job": JOB, "instance": operator.name}
            inner = ",".join(f"{key}={json.dumps(value)}" for key, value in sorted(labels.items()))
            samples[f"{sample.name}{{{inner}}}"] = (family.type in ("counter", "histogram"), sample.value)
    return samples


def number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(round(value, 6))


def steady(values: list[float | None], start: int) -> tuple[int, float]:
    """How many values from `start` on go up by one step, and that step (0 for a run of one value)."""
    run, step = 1, 0.0
    while start + run < len(values):
        before, after = values[start + run - 1], values[start + run]
        if before is None or after is None or (run > 1 and abs(after - before - step) > 1e-6):
            break
        step = after - before
        run += 1
    return run, step


def render(values: list[float | None]) -> str:
    """Promtool's notation: `_` no sample, `stale` where a series stops, even steps as `A+BxN`."""
    tokens: list[str] = []
    previous: float | None = None
    index = 0
    while index < len(values):
        value = values[index]
        if value is None:
            run = next((j for j in range(index, len(values)) if values[j] is not None), len(values)) - index
            if previous is not None:
                tokens.append("stale")
                run -= 1
                index += 1
            if run:
                tokens.append(f"_x{run}")
            index += run
            previous = None
            continue
        run, step = steady(values, index)
        if run >= 3:
            tokens.append(f"{number(value)}{'+' if step >= 0 else '-'}{number(abs(step))}x{run - 1}")
        else:
            tokens.extend(number(v) for v in values[index : index + run] if v is not None)
        index += run
        previous = values[index - 1]
    return " ".join(tokens)


def held(values: list[float | None], counter: bool) -> list[float | None]:
    """The series with HOLD samples of its state at FIX - 1 inserted before FIX (see the module's text)."""
    last = values[FIX - 1]
    if last is None:
        return values[:FIX] + [None] * HOLD + values[FIX:]
    step = 0.0
    earlier = values[FIX - 1 - RATE_WINDOW]
    if counter and earlier is not None:
        step = (last - earlier) / RATE_WINDOW
    hold = [last + step * (i + 1) for i in range(HOLD)]
    after = [None if v is None else v + step * HOLD if counter else v for v in values[FIX:]]
    return values[:FIX] + hold + after


def record(
    namespace: str, log_dir: Path, admin: AdminClient, operators: list[Operator]
) -> tuple[list[dict[str, float]], dict[str, bool]]:
    """The samples, and which series are counters; `operators` gets each process as it starts."""
    names = {what: f"{namespace}-{what}" for what in ("healthy", "stalled", "unreachable", "drift", "awaiting")}
    kubectl("create", "namespace", namespace)
    kubectl(
        "create", "secret", "generic", "nowhere", "-n", namespace, "--from-literal=bootstrap.servers=127.0.0.1:1"
    )  # fmt: skip
    kafka = ("--controllers", "kafka", "--leader-election-namespace", namespace)
    first = start("kafka-0", namespace, log_dir, *kafka)
    operators.append(first)
    wait_for("kafka-0 to lead", lambda: 'infometis_leader{lease="infometis-kafka"} 1.0' in first.get(
        first.metrics_port, "/metrics")[1])  # fmt: skip
    operators.append(start("kafka-1", namespace, log_dir, *kafka))
    operators.append(start("elasticsearch-0", namespace, log_dir, "--controllers", "elasticsearch",
                           "--leader-election-namespace", f"{namespace}-missing"))  # fmt: skip
    for operator in operators:
        wait_for(f"{operator.name} to serve /metrics", lambda o=operator: scrape(o) != {})
    apply(namespace, topic(names["healthy"], config=CONFIG))
    kubectl("wait", "-n", namespace, "kafkatopic", names["healthy"], "--for=condition=Ready", "--timeout=60s")

    samples: list[dict[str, float]] = []
    counters: dict[str, bool] = {}
    started = time.monotonic()
    for index in range(STOP + 1):
        time.sleep(max(0.0, started + index * INTERVAL - time.monotonic()))
        scraped: dict[str, float] = {}
        for operator in operators:
            for series, (counter, value) in scrape(operator).items():
                scraped[series] = value
                counters[series] = counter
        samples.append(scraped)
        say(f"sample {index}: {len(scraped)} series")
        if index == BREAK:
            apply(namespace, topic(names["stalled"], config={"retention.ms": "not-a-number"}))
            apply(namespace, topic(names["unreachable"], clusterRef={"name": "nowhere"}))
            apply(namespace, topic(names["drift"], config=CONFIG, driftPolicy="Report"))
            apply(namespace, topic(names["awaiting"], approval="Manual"))
        elif index == DRIFT:
            set_config(admin, names["drift"], OUT_OF_BAND)
        elif index == FIX:
            kubectl("patch", "kafkatopic", names["stalled"], "-n", namespace, "--type=merge",
                    "-p", json.dumps({"spec": {"config": CONFIG}}))  # fmt: skip
            kubectl("delete", "kafkatopic", names["unreachable"], names["awaiting"], "-n", namespace)
            set_config(admin, names["drift"], CONFIG)
        elif index == HANDOVER:
            stop(operators[0])
        elif index == STOP - 1:
            for operator in operators[1:]:
                stop(operator)
    return samples, counters


def stop(operator: Operator) -> None:
    if operator.process.poll() is None:
        operator.process.send_signal(signal.SIGTERM)
        operator.process.wait(timeout=30)


def duration(seconds: int) -> str:
    return f"{seconds // 60}m{seconds % 60}s" if seconds % 60 else f"{seconds // 60}m"


def write(samples: list[dict[str, float]], counters: dict[str, bool], namespace: str) -> None:
    recorded = {series: [sample.get(series) for sample in samples] for series in sorted(counters)}
    # Each step came just after this sample, in the tests' time: from FIX on, after the hold.
    steps = {"broken": BREAK, "drift_out_of_band": DRIFT, "hold_from": FIX - 1, "fixed": FIX + HOLD,
             "handover": HANDOVER + HOLD, "stopped": STOP - 1 + HOLD}  # fmt: skip
    document = {
        "interval": f"{INTERVAL}s",
        "timeline": {step: duration(index * INTERVAL) for step, index in steps.items()},
        "input_series": [
            {"series": series, "values": render(held(values, counters[series]))} for series, values in recorded.items()
        ],
    }
    header = (
        f"# Recorded by hack/monitoring/record_alert_series.py on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC from the\n"
        f"# operator's /metrics on the local stack (namespace {namespace}); rerun that script, do not edit.\n"
        f"# Scraped every {INTERVAL}s; the broken state is held for {HOLD * INTERVAL // 60} minutes from\n"
        f"# timeline.hold_from (gauges as last scraped, counters at their last minute's rate), the rest as\n"
        f"# scraped. timeline: when each step happened, in the tests' time.\n"
    )
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(header + yaml.safe_dump(document, sort_keys=False, width=1000))
    say(f"wrote {len(recorded)} series to {OUTPUT.relative_to(REPO)}")


def main() -> None:
    namespace = f"alert-record-{secrets.token_hex(3)}"
    log_dir = Path(os.environ.get("TMPDIR", "/tmp")) / namespace
    log_dir.mkdir(parents=True)
    say(f"namespace {namespace}; operator logs in {log_dir}")
    admin = AdminClient({"bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"]})
    operators: list[Operator] = []
    try:
        samples, counters = record(namespace, log_dir, admin, operators)
    finally:
        for operator in operators:
            stop(operator)
        subprocess.run(["kubectl", "delete", "namespace", namespace, "--wait=false"], check=False)
        created = [f"{namespace}-{what}" for what in ("healthy", "stalled", "drift")]
        for future in admin.delete_topics(created, operation_timeout=15).values():
            try:
                future.result(timeout=30)
            except Exception as error:  # a topic never created
                say(f"deleting a topic: {error}")
    write(samples, counters, namespace)


if __name__ == "__main__":
    main()
