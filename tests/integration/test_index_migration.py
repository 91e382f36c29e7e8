"""Migrations of ElasticsearchIndex on the real servers with a real _reindex (OpenSearch 3.8.0 and
Elasticsearch 7.17.29), and the honest refusal on Elasticsearch 9.5.3, which has none.

Every test writes through the name while the index moves and checks, on the server, that every
acknowledged write is in the new index, once, with its last acknowledged content.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.integration.conftest import RunningOperator, start_operator
from tests.integration.helpers import (
    GROUP,
    VERSION,
    apply,
    condition,
    events,
    exists,
    get,
    patch_spec,
    unique,
    wait_for,
    wait_ready,
    wait_reason,
)
from tests.integration.search import (
    PLURAL,
    SERVERS,
    WITH_REINDEX,
    SearchServer,
    connect,
    connection_secret,
    search_index,
    server_fixture,
)

search = server_fixture(WITH_REINDEX)
OLD_SPEC: dict[str, Any] = {
    "settings": {"number_of_shards": 1, "number_of_replicas": 0},
    "mappings": {"properties": {"value": {"type": "long"}, "rev": {"type": "long"}}},
}
NEW_SETTINGS = {"number_of_shards": 3, "number_of_replicas": 0}
NEW_MAPPINGS = {"properties": {"value": {"type": "keyword"}, "rev": {"type": "long"}}}
STEP_EVENTS = ("MigrationStarted", "MigrationCatchingUp", "MigrationCompleted")


def body(response: Any) -> Any:
    return response.body if hasattr(response, "body") else response


def resolve(server: SearchServer, name: str) -> dict[str, Any]:
    """The concrete indices a name resolves to, as the get-index API shows them (settings flat)."""
    return dict(body(server.api.indices.get(index=name, flat_settings=True, ignore_unavailable=True)))


def present(server: SearchServer, name: str) -> bool:
    return bool(resolve(server, name))


def load(server: SearchServer, index: str, documents: int) -> None:
    """Documents 'd-0'.. with value = their number, rev 0, in bulk requests."""
    for start in range(0, documents, 5000):
        lines: list[dict[str, Any]] = []
        for n in range(start, min(start + 5000, documents)):
            lines += [{"index": {"_index": index, "_id": f"d-{n}"}}, {"value": n, "rev": 0}]
        answer = body(server.api.bulk(body=lines, refresh=False))
        assert not answer["errors"], answer["items"][:3]
    server.api.indices.refresh(index=index)


def fetch(server: SearchServer, index: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """_id -> _source of these documents (absent ones left out)."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 1000):
        answer = body(server.api.mget(index=index, body={"ids": ids[start : start + 1000]}))
        found.update({doc["_id"]: doc["_source"] for doc in answer["docs"] if doc.get("found")})
    return found


def manifest(name: str, **spec: Any) -> dict[str, Any]:
    return search_index(name, **spec)


def _blocked(error: Exception) -> bool:
    """The write block of the final copy: refused, not applied; the writer tries again."""
    return "cluster_block_exception" in str(error)


@dataclass
class Writer:
    """Writes through the name the whole time: new documents 'w-<i>' and overwrites of 'd-<k>' (rev = i).

    Acknowledged writes are the ones the server confirmed; a write refused by the block is tried again
    until it is acknowledged, as a client that treats the block as retryable does."""

    search: SearchServer
    name: str
    updated_range: int
    acknowledged: set[str] = field(default_factory=set)
    revisions: dict[str, int] = field(default_factory=dict)  # the last acknowledged rev per overwritten doc
    uncertain: set[str] = field(default_factory=set)  # failed otherwise: may or may not have been applied
    block_refusals: int = 0
    stopping: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> Writer:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        assert self.thread is not None
        self.thread.join(timeout=60)

    def _run(self) -> None:
        i = 0
        while not self.stopping.is_set():
            i += 1
            if i % 3 == 0:
                doc_id, document = f"d-{(i * 7919) % self.updated_range}", {"value": i, "rev": i}
            else:
                doc_id, document = f"w-{i}", {"value": i, "rev": i}
            while True:
                try:
                    self.search.api.index(index=self.name, id=doc_id, body=document)
                except Exception as error:
                    if _blocked(error):
                        self.block_refusals += 1
                        time.sleep(0.02)
                        continue
                    self.uncertain.add(doc_id)
                    time.sleep(0.1)
                    break
                if doc_id.startswith("w-"):
                    self.acknowledged.add(doc_id)
                else:
                    self.revisions[doc_id] = i
                    self.uncertain.discard(doc_id)
                break
            time.sleep(0.002)

    def check(self, index: str, loaded: int) -> None:
        """Every acknowledged write is in `index` with its last content; nothing is there twice or extra."""
        new_ids = sorted(self.acknowledged)
        found = fetch(self.search, index, new_ids)
        missing = [doc_id for doc_id in new_ids if doc_id not in found]
        assert not missing, f"{len(missing)} acknowledged new documents missing, e.g. {missing[:5]}"
        overwritten = fetch(self.search, index, sorted(self.revisions))
        stale = {doc_id: (overwritten.get(doc_id), rev) for doc_id, rev in self.revisions.items()}
        stale = {doc_id: seen for doc_id, seen in stale.items() if seen[0] is None or seen[0]["rev"] != seen[1]}
        assert not stale, f"{len(stale)} overwrites lost, e.g. {list(stale.items())[:3]}"
        counted = self.search.documents(index)
        maybe = len({doc_id for doc_id in self.uncertain if doc_id.startswith("w-")})
        # _ids are unique in an index: the count is exactly the distinct documents, so no duplicate.
        assert loaded + len(new_ids) <= counted <= loaded + len(new_ids) + maybe, (counted, loaded, len(new_ids), maybe)


def watch_progress(namespace: str, name: str, stop: threading.Event) -> list[str]:
    """Every Ready-condition message seen while the migration runs (a background poll)."""
    seen: list[str] = []

    def poll() -> None:
        while not stop.is_set():
            ready = condition(get(namespace, name, PLURAL), "Ready")
            if ready and (not seen or seen[-1] != ready["message"]):
                seen.append(ready["message"])
            time.sleep(0.1)

    threading.Thread(target=poll, daemon=True).start()
    return seen


def migrated(namespace: str, name: str, target: str, timeout: float = 240) -> dict[str, Any]:
    """The object once Ready at its generation with the name on `target` and no migration left."""

    def done() -> dict[str, Any] | None:
        obj = get(namespace, name, PLURAL)
        status = obj.get("status") or {}
        ready = condition(obj, "Ready")
        if (
            ready
            and ready["status"] == "True"
            and status.get("observedGeneration") == obj["metadata"]["generation"]
            and status.get("concreteIndex") == target
            and "migration" not in status
        ):
            return obj
        return None

    obj: dict[str, Any] = wait_for(done, timeout=timeout, interval=0.5, what=f"{name} migrated to {target}")
    return obj


def said(namespace: str, name: str) -> Counter[str]:
    return Counter(event["reason"] for event in events(namespace, name))


def assert_moved(search: SearchServer, name: str, target: str, shards: int = 3) -> None:
    behind = resolve(search, name)
    assert list(behind) == [target], behind
    details = behind[target]
    assert details["aliases"][name].get("is_write_index") is True
    assert details["settings"]["index.number_of_shards"] == str(shards)
    assert details["mappings"]["properties"]["value"]["type"] == "keyword"
    assert details["settings"].get("index.blocks.write") != "true"


# --- a full migration -------------------------------------------------------------------------


def test_a_migration_moves_the_index_and_keeps_every_write(
    operator: RunningOperator, namespace: str, search: SearchServer
) -> None:
    name = unique("orders")
    connection_secret(namespace, search)
    apply(namespace, manifest(name, **OLD_SPEC, migration={"strategy": "Reindex", "deleteOldIndex": True}))
    obj = wait_ready(namespace, name, plural=PLURAL)
    assert obj["status"]["concreteIndex"] == f"{name}-v1"  # behind the name from the start
    loaded = 30_000
    load(search, name, loaded)
    assert search.documents(name) == loaded

    writer = Writer(search, name, updated_range=loaded).start()
    stop_watching = threading.Event()
    messages = watch_progress(namespace, name, stop_watching)
    time.sleep(1)
    started = time.monotonic()
    patch_spec(namespace, name, {"settings": NEW_SETTINGS, "mappings": NEW_MAPPINGS}, plural=PLURAL)
    migrated(namespace, name, f"{name}-v2")
    took = time.monotonic() - started
    time.sleep(1)  # writes go on through the name, now to the new index
    writer.stop()
    stop_watching.set()

    assert_moved(search, name, f"{name}-v2")
    assert not present(search, f"{name}-v1"), "deleteOldIndex: the old index should be gone"
    writer.check(f"{name}-v2", loaded)
    assert len(writer.acknowledged) > 100 and len(writer.revisions) > 50, "the writer hardly wrote"
    reasons = said(namespace, name)
    assert [reasons[r] for r in (*STEP_EVENTS, "OldIndexDeleted")] == [1, 1, 1, 1], reasons
    assert reasons["MigrationStopped"] == 0, reasons
    assert any("copied" in m and " of " in m for m in messages), messages
    print(
        f"\n{search.name}: migrated {loaded} documents in {took:.1f}s with {len(writer.acknowledged)} new and "
        f"{len(writer.revisions)} overwritten documents written meanwhile, {writer.block_refusals} block refusals"
    )


# --- adoption ---------------------------------------------------------------------------------------


def test_adopting_a_plain_index_turns_its_name_into_an_alias(
    operator: RunningOperator, namespace: str, search: SearchServer
) -> None:
    name = unique("legacy")
    search.api.indices.create(
        index=name,
        body={**OLD_SPEC, "aliases": {f"{name}-read": {"filter": {"range": {"value": {"gte": 10}}}}}},
    )
    loaded = 5_000
    load(search, name, loaded)
    writer = Writer(search, name, updated_range=loaded).start()
    connection_secret(namespace, search)
    apply(
        namespace,
        manifest(name, settings=NEW_SETTINGS, mappings=NEW_MAPPINGS, migration={"strategy": "Reindex"}),
    )
    migrated(namespace, name, f"{name}-v1")
    time.sleep(0.5)
    writer.stop()

    assert_moved(search, name, f"{name}-v1")
    writer.check(f"{name}-v1", loaded)
    # The user's alias moved along, filter and all.
    read = resolve(search, f"{name}-read")
    assert list(read) == [f"{name}-v1"]
    assert read[f"{name}-v1"]["aliases"][f"{name}-read"]["filter"] == {"range": {"value": {"gte": 10}}}
    filtered = body(search.api.count(index=f"{name}-v1", body={"query": {"range": {"value": {"gte": 10}}}}))
    assert search.documents(f"{name}-read") == filtered["count"] < search.documents(name)
    reasons = said(namespace, name)
    assert [reasons[r] for r in ("Adopted", *STEP_EVENTS)] == [1, 1, 1, 1], reasons
    assert reasons["OldIndexDeleted"] == 0, reasons  # the plain index went with the alias switch itself


# --- SIGKILL at every step ------------------------------------------------------------------------

# Where the operator kills itself, in the order a migration reaches them (controllers.core.failpoints).
CRASH_POINTS = (
    "migration.before-StartCopy",  # the intent (and status.migration) recorded, nothing done
    "migration.target-created",  # the target exists, no copy started
    "migration.after-StartCopy",  # the first copy runs, its task id not recorded
    None,  # killed from outside while the first copy runs with its task recorded; it ends meanwhile
    "migration.source-blocked",  # writes blocked, no final copy started
    "migration.after-CatchUp",  # the final copy runs, its task id not recorded
    "migration.after-SwitchAlias",  # the name moved, the status not told
    "migration.after-DeleteOldIndex",  # the old index deleted, the status not told
)


@pytest.mark.filterwarnings("ignore::elasticsearch.exceptions.GeneralAvailabilityWarning")
def test_a_migration_killed_at_every_step_resumes_and_finishes_without_loss(
    operator: RunningOperator,
    namespace: str,
    search: SearchServer,
    session_operator_paused: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = unique("crash")
    log = tmp_path / "operator.log"
    connection_secret(namespace, search)
    process = start_operator(operator, namespace, log)
    try:
        apply(namespace, manifest(name, **OLD_SPEC, migration={"strategy": "Reindex", "deleteOldIndex": True}))
        wait_ready(namespace, name, plural=PLURAL)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    loaded = 60_000
    load(search, name, loaded)
    writer = Writer(search, name, updated_range=loaded).start()
    stop_watching = threading.Event()
    messages = watch_progress(namespace, name, stop_watching)
    patch_spec(namespace, name, {"settings": NEW_SETTINGS, "mappings": NEW_MAPPINGS}, plural=PLURAL)

    crashes = []
    for point in CRASH_POINTS:
        if point is None:
            process = start_operator(operator, namespace, log)
            migration = wait_for(
                lambda: (get(namespace, name, PLURAL).get("status") or {}).get("migration", {}).get("task"),
                timeout=60,
                interval=0.05,
                what="a copy task recorded in status.migration",
            )
            process.send_signal(signal.SIGKILL)
            process.wait()
            # The task ends while no operator runs: the next one reads its stored result.
            wait_for(lambda t=migration: _task_done(search, t), timeout=120, what=f"copy task {migration} to end")
            crashes.append(("killed while copying", -signal.SIGKILL))
            continue
        monkeypatch.setenv("INFOMETIS_CRASH_AT", point)
        process = start_operator(operator, namespace, log)
        monkeypatch.delenv("INFOMETIS_CRASH_AT")
        try:
            code = process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            status = get(namespace, name, PLURAL)["status"]
            raise AssertionError(f"the operator never reached {point}: {status}") from None
        crashes.append((point, code))
    assert all(code == -signal.SIGKILL for _, code in crashes), crashes

    process = start_operator(operator, namespace, log)
    try:
        migrated(namespace, name, f"{name}-v2")
        time.sleep(0.5)
    finally:
        writer.stop()
        stop_watching.set()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)

    print(f"\n{search.name}: what the Ready condition said across {len(crashes)} kills:")
    print("\n".join(f"  {message}" for message in messages))
    assert_moved(search, name, f"{name}-v2")
    assert not present(search, f"{name}-v1")
    writer.check(f"{name}-v2", loaded)
    reasons = said(namespace, name)
    assert [reasons[r] for r in (*STEP_EVENTS, "OldIndexDeleted")] == [1, 1, 1, 1], reasons
    assert "Traceback" not in log.read_text(errors="replace")


def _task_done(search: SearchServer, task_id: str) -> bool:
    return bool(body(search.api.tasks.get(task_id=task_id)).get("completed"))


# --- deletes during the first copy --------------------------------------------------------------------


def test_deletes_during_the_first_copy_stop_the_migration_with_the_source_writable(
    operator: RunningOperator, namespace: str, search: SearchServer
) -> None:
    name = unique("deletes")
    connection_secret(namespace, search)
    apply(namespace, manifest(name, **OLD_SPEC, migration={"strategy": "Reindex"}))
    wait_ready(namespace, name, plural=PLURAL)
    loaded = 30_000
    load(search, name, loaded)
    deleted: list[str] = []
    stopping = threading.Event()

    def delete_some() -> None:
        n = loaded
        while not stopping.is_set() and n > 0:
            n -= 1
            try:
                search.api.delete(index=name, id=f"d-{n}")
                deleted.append(f"d-{n}")
            except Exception as error:
                if not _blocked(error):
                    raise
            time.sleep(0.005)

    deleter = threading.Thread(target=delete_some, daemon=True)
    deleter.start()
    patch_spec(namespace, name, {"settings": NEW_SETTINGS, "mappings": NEW_MAPPINGS}, plural=PLURAL)
    obj = wait_reason(namespace, name, "False", "MigrationCountMismatch", timeout=240, plural=PLURAL)
    stopping.set()
    deleter.join(timeout=10)

    message = condition(obj, "Ready")["message"]  # type: ignore[index]
    assert "still serves the name and takes writes again" in message, message
    # The name still points at the source, which takes writes again; the target is left for inspection.
    behind = resolve(search, name)
    assert list(behind) == [f"{name}-v1"]
    assert behind[f"{name}-v1"]["settings"].get("index.blocks.write") != "true"
    search.api.index(index=name, id="after", body={"value": 1, "rev": 1})
    assert present(search, f"{name}-v2")
    assert obj["status"]["migration"]["step"] == "Failed"
    assert said(namespace, name)["MigrationStopped"] == 1


# --- the object deleted mid-migration --------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::elasticsearch.exceptions.GeneralAvailabilityWarning")
def test_deleting_the_object_during_a_migration_leaves_no_index_and_no_copy_behind(
    operator: RunningOperator, namespace: str, search: SearchServer
) -> None:
    name = unique("gone")
    connection_secret(namespace, search)
    apply(namespace, manifest(name, **OLD_SPEC, deletionPolicy="Delete", migration={"strategy": "Reindex"}))
    wait_ready(namespace, name, plural=PLURAL)
    load(search, name, 60_000)
    patch_spec(namespace, name, {"settings": NEW_SETTINGS, "mappings": NEW_MAPPINGS}, plural=PLURAL)
    task = wait_for(
        lambda: (get(namespace, name, PLURAL).get("status") or {}).get("migration", {}).get("task"),
        timeout=60,
        interval=0.05,
        what="the first copy recorded",
    )
    custom = client.CustomObjectsApi()
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    wait_for(lambda: not exists(namespace, name, PLURAL), timeout=60, what=f"{name} deleted")

    for index in (name, f"{name}-v1", f"{name}-v2"):
        assert not present(search, index), f"{index} left behind"
    assert _task_done(search, task), "the copy still runs"
    time.sleep(1)  # a copy still running would re-create the target
    assert not present(search, f"{name}-v2")


# --- a server without _reindex ---------------------------------------------------------------------------


def test_a_server_without_reindex_stalls_and_nothing_is_touched(operator: RunningOperator, namespace: str) -> None:
    server = connect("elasticsearch", os.environ[SERVERS["elasticsearch"]])  # 9.5.3: no reindex module
    try:
        name = unique("noreindex")
        connection_secret(namespace, server)
        apply(namespace, manifest(name, **OLD_SPEC, migration={"strategy": "Reindex"}))
        wait_ready(namespace, name, plural=PLURAL)
        load(server, name, 10)
        before = resolve(server, name)
        patch_spec(namespace, name, {"settings": NEW_SETTINGS, "mappings": NEW_MAPPINGS}, plural=PLURAL)
        obj = wait_reason(namespace, name, "False", "MigrationUnsupported", plural=PLURAL)
        message = condition(obj, "Ready")["message"]  # type: ignore[index]
        assert "no _reindex API" in message and "Nothing was changed" in message, message
        assert "migration" not in obj["status"]
        assert resolve(server, name) == before  # same index, settings (no write block), mappings, aliases
        assert not present(server, f"{name}-v2")
        assert server.documents(name) == 10
        server.api.index(index=name, id="still-writable", body={"value": 1, "rev": 0})
    finally:
        server.api.close()
