"""The thin edge to the Kubernetes API for everything the operator writes.

kopf watches; this client writes (status, finalizers, Events) and reads
Secrets. It is a small aiohttp client so that a thousand status patches cost
milliseconds of CPU each, not the generated client's deserialisation. The
credentials come from the `kubernetes` library's loaders, so KUBECONFIG,
in-cluster ServiceAccounts and exec plugins all work.
"""

from __future__ import annotations

import base64
import datetime
import json
import socket
import ssl
from collections.abc import Mapping
from typing import Any

import aiohttp
import kubernetes

from controllers.core import metrics
from controllers.core.objects import ObjectKey, ResourceInfo

MERGE_PATCH = "application/merge-patch+json"
REPORTING_COMPONENT = "infometis-operator"


class KubeError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Kubernetes API answered {status}: {message}")


class KubeApi:
    def __init__(self, configuration: kubernetes.client.Configuration) -> None:
        self._configuration = configuration
        self._base = configuration.host.rstrip("/")
        self._session: aiohttp.ClientSession | None = None
        self._instance = socket.gethostname()

    @staticmethod
    def from_environment() -> KubeApi:
        """Credentials from KUBECONFIG (or ~/.kube/config), else the in-cluster ServiceAccount."""
        configuration = kubernetes.client.Configuration()
        try:
            kubernetes.config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return KubeApi(configuration)

    def _ssl(self) -> ssl.SSLContext | bool:
        c = self._configuration
        if not c.verify_ssl:
            return False
        context = ssl.create_default_context(cafile=c.ssl_ca_cert)
        if c.cert_file:
            context.load_cert_chain(c.cert_file, c.key_file)
        return context

    async def _session_or_new(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._ssl(), limit=32)
            self._session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30))
        return self._session

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        c = self._configuration
        if c.refresh_api_key_hook is not None:
            c.refresh_api_key_hook(c)  # rotates in-cluster and exec-plugin tokens
        headers = {"Accept": "application/json"}
        bearer = c.auth_settings().get("BearerToken")
        if bearer and bearer["value"]:
            headers["Authorization"] = bearer["value"]  # "Bearer <token>" (or Basic), as the loaders set it
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    async def _request(
        self, method: str, path: str, *, body: Any = None, content_type: str | None = None
    ) -> dict[str, Any] | None:
        """The decoded response, or None on 404. Other failures raise KubeError."""
        session = await self._session_or_new()
        data = None if body is None else json.dumps(body)
        try:
            return await self._send(session, method, path, data, content_type)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise KubeError(0, f"no answer from the API server: {error!r}") from None

    async def _send(
        self, session: aiohttp.ClientSession, method: str, path: str, data: str | None, content_type: str | None
    ) -> dict[str, Any] | None:
        async with session.request(
            method, self._base + path, data=data, headers=self._headers(content_type)
        ) as response:
            if method != "GET":
                metrics.KUBE_WRITES.labels(method=method, code=str(response.status)).inc()
            if response.status == 404:
                return None
            text = await response.text()
            if response.status >= 400:
                try:
                    message = json.loads(text).get("message", text)
                except ValueError:
                    message = text
                raise KubeError(response.status, message)
            return json.loads(text) if text else {}

    @staticmethod
    def _object_path(resource: ResourceInfo, key: ObjectKey) -> str:
        return f"/apis/{resource.group}/{resource.version}/namespaces/{key.namespace}/{resource.plural}/{key.name}"

    async def patch_status(
        self, resource: ResourceInfo, key: ObjectKey, patch: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Merge-patch the status subresource; the updated object, or None if it is gone."""
        return await self._request(
            "PATCH",
            self._object_path(resource, key) + "/status",
            body={"status": patch},
            content_type=MERGE_PATCH,
        )

    async def patch_finalizers(
        self, resource: ResourceInfo, key: ObjectKey, finalizers: list[str], resource_version: str
    ) -> dict[str, Any] | None:
        """Replace metadata.finalizers, refusing (409) if the object changed meanwhile."""
        return await self._request(
            "PATCH",
            self._object_path(resource, key),
            body={"metadata": {"finalizers": finalizers, "resourceVersion": resource_version}},
            content_type=MERGE_PATCH,
        )

    async def record_event(
        self, involved: Mapping[str, Any], resource: ResourceInfo, *, reason: str, message: str, warning: bool
    ) -> None:
        meta = involved["metadata"]
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": resource.api_version,
                "kind": resource.kind,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": REPORTING_COMPONENT},
            "reportingComponent": f"{resource.group}/{REPORTING_COMPONENT}",
            "reportingInstance": self._instance,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        await self._request(
            "POST", f"/api/v1/namespaces/{meta['namespace']}/events", body=event, content_type="application/json"
        )

    async def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        """The Secret's data, decoded; None if there is no such Secret."""
        secret = await self._request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
        if secret is None:
            return None
        return {
            key: base64.b64decode(value).decode("utf-8", errors="replace")
            for key, value in (secret.get("data") or {}).items()
        }

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
