"""What the NiFiFlow tests share: the real NiFi's REST API read and changed directly, and manifests."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.integration.helpers import GROUP, VERSION

PLURAL = "nififlows"


class NiFi:
    """The stack's NiFi, spoken to as its UI does (plain REST), so tests need nothing from the operator."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw.strip().startswith(b"{") else raw.decode()

    def root_id(self) -> str:
        return str(self.call("GET", "/process-groups/root")["id"])

    def group_named(self, name: str) -> dict[str, Any] | None:
        groups = self.call("GET", "/process-groups/root/process-groups")["processGroups"]
        found = [g for g in groups if g["component"]["name"] == name]
        assert len(found) <= 1, f"{len(found)} groups named {name}"
        return found[0] if found else None

    def download(self, group_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/process-groups/{group_id}/download"))

    def processors(self, group_id: str) -> dict[str, dict[str, Any]]:
        listing = self.call("GET", f"/process-groups/{group_id}/processors")["processors"]
        return {p["component"]["name"]: p for p in listing}

    def set_property(self, group_id: str, processor: str, name: str, value: str) -> None:
        """As the UI does it: NiFi changes a processor's configuration only while it is stopped. The
        operator may start it again in between (correcting drift): then stop it and try again."""
        for attempt in range(5):
            self.stop_processor(group_id, processor)
            entity = self.processors(group_id)[processor]
            body = {
                "revision": entity["revision"],
                "component": {"id": entity["id"], "config": {"properties": {name: value}}},
            }
            try:
                self.call("PUT", f"/processors/{entity['id']}", body)
                return
            except urllib.error.HTTPError as error:
                if error.code not in (400, 409) or attempt == 4:
                    raise

    def stop_processor(self, group_id: str, processor: str) -> None:
        entity = self.processors(group_id)[processor]
        self.call("PUT", f"/processors/{entity['id']}/run-status", {"revision": entity["revision"], "state": "STOPPED"})

    def _status(self, group_id: str) -> dict[str, Any]:
        """The group's aggregate status snapshot, its child groups included."""
        snapshot = self.call("GET", f"/flow/process-groups/{group_id}/status?recursive=true")
        return dict(snapshot["processGroupStatus"]["aggregateSnapshot"])

    def _processors(self, group_id: str) -> list[dict[str, Any]]:
        return [p["processorStatusSnapshot"] for p in self._status(group_id)["processorStatusSnapshots"]]

    def run_status(self, group_id: str) -> dict[str, str]:
        return {p["name"]: p["runStatus"] for p in self._processors(group_id)}

    def flowfiles_in(self, group_id: str, processor: str) -> int:
        """How many flowfiles PROCESSOR took in over NiFi's last five minutes."""
        return next(int(p["flowFilesIn"]) for p in self._processors(group_id) if p["name"] == processor)

    def queued(self, group_id: str) -> int:
        return int(self._status(group_id)["flowFilesQueued"])

    def context(self, name: str) -> dict[str, Any] | None:
        for entity in self.call("GET", "/flow/parameter-contexts")["parameterContexts"]:
            if entity["component"]["name"] == name:
                return dict(entity)
        return None

    def parameters(self, name: str) -> dict[str, str | None]:
        context = self.context(name)
        assert context is not None, f"no parameter context {name}"
        return {p["parameter"]["name"]: p["parameter"].get("value") for p in context["component"]["parameters"]}

    def upload(self, name: str, definition: dict[str, Any]) -> str:
        """Create a group from a flow definition under the root group, as the UI's upload does; its id."""
        boundary = "infometis-test-boundary"
        fields = {"groupName": name, "positionX": "0", "positionY": "0", "clientId": "test"}
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'
            for key, value in fields.items()
        ]
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="flow.json"\r\n'
            f"Content-Type: application/json\r\n\r\n{json.dumps(definition)}\r\n"
        )
        request = urllib.request.Request(
            self.url + "/process-groups/root/process-groups/upload",
            data=("".join(parts) + f"--{boundary}--\r\n").encode(),
            method="POST",
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(json.loads(response.read())["id"])

    def delete_group(self, group_id: str) -> None:
        self.call("PUT", f"/flow/process-groups/{group_id}", {"id": group_id, "state": "STOPPED"})
        version = self.call("GET", f"/process-groups/{group_id}")["revision"]["version"]
        self.call("DELETE", f"/process-groups/{group_id}?version={version}&clientId=test")


@pytest.fixture(scope="session")
def nifi() -> NiFi:
    url = os.environ.get("NIFI_URL")
    if not url:
        pytest.fail("NIFI_URL is not set: the stack does not run nifi (hack/stack up starts it)")
    try:
        urllib.request.urlopen(url.rstrip("/") + "/flow/about", timeout=10).read()
    except (urllib.error.URLError, OSError) as error:
        pytest.fail(f"NiFi at {url} does not answer: {error}")
    return NiFi(url)


def nifi_flow(name: str, definition: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    if definition is not None:
        spec["flowDefinition"] = definition
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "NiFiFlow", "metadata": {"name": name}, "spec": spec}
