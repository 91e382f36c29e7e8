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
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
import kubernetes

from controllers.core import metrics
from controllers.core.objects import ObjectKey, ResourceInfo

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
# Names and resourceVersions only: a full listing of thousands of objects costs
# megabytes to send and parse; the metadata is all a listing is needed for.
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
LIST_PAGE_SIZE = 500
REPORTING_COMPONENT = "infometis-operator"


class KubeError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Kubernetes API answered {status}: {message}")
        self.status = status

    @property
    def unavailable(self) -> bool:
        """No answer (status 0), or "not now" (429, 5xx): the API server probe reports these, once per outage."""
        return self.status in (0, 429) or self.status >= 500


@dataclass(frozen=True)
class Listing:
    resource_version: str
    versions: Mapping[ObjectKey, str]


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
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str | None = None,
        accept: str | None = None,
        counted: bool = True,
    ) -> dict[str, Any] | None:
        """The decoded response, or None on 404. Other failures raise KubeError. Writes are `counted` in
        infometis_kube_writes_total unless they are the Lease's (the work's writes, not the election's) or only
        ask (an access review)."""
        session = await self._session_or_new()
        data = None if body is None else json.dumps(body)
        try:
            return await self._send(session, method, path, data, content_type, accept, counted)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise KubeError(0, f"no answer from the API server: {error!r}") from None

    async def _send(
        self,
        session: aiohttp.ClientSession,
        method: str,
        path: str,
        data: str | None,
        content_type: str | None,
        accept: str | None,
        counted: bool,
    ) -> dict[str, Any] | None:
        headers = self._headers(content_type)
        if accept:
            headers["Accept"] = accept
        async with session.request(method, self._base + path, data=data, headers=headers) as response:
            if method != "GET" and counted:
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

    async def read_object(self, resource: ResourceInfo, key: ObjectKey) -> dict[str, Any] | None:
        """The object as the API server has it now; None if it is gone."""
        return await self._request("GET", self._object_path(resource, key))

    async def list_versions(self, resource: ResourceInfo, namespace: str | None) -> Listing:
        """Every object's resourceVersion, from one consistent listing (paged), metadata only."""
        where = f"/namespaces/{namespace}" if namespace else ""
        path = f"/apis/{resource.group}/{resource.version}{where}/{resource.plural}?limit={LIST_PAGE_SIZE}"
        versions: dict[ObjectKey, str] = {}
        listing_version = ""
        token = ""
        while True:
            page = await self._request(
                "GET", path + (f"&continue={urllib.parse.quote(token)}" if token else ""), accept=METADATA_LIST
            )
            if page is None:
                raise KubeError(404, f"{resource.plural} cannot be listed (is the CRD installed?)")
            # Every page of a paged listing is of one snapshot: the first page's version.
            listing_version = listing_version or page["metadata"]["resourceVersion"]
            for item in page.get("items") or []:
                meta = item["metadata"]
                versions[ObjectKey(meta["namespace"], meta["name"])] = meta["resourceVersion"]
            token = page["metadata"].get("continue") or ""
            if not token:
                return Listing(listing_version, versions)

    async def replace_status(
        self, resource: ResourceInfo, key: ObjectKey, uid: str, status: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Set the status of the object with this uid; the updated object, or None if it is gone.

        A JSON patch whose first operation tests metadata.uid: an object deleted and
        recreated under the same name meanwhile is refused (422), never given the old
        one's status. (A merge patch cannot carry that precondition: the status
        subresource ignores metadata in it.)
        """
        return await self._request(
            "PATCH",
            self._object_path(resource, key) + "/status",
            body=[
                {"op": "test", "path": "/metadata/uid", "value": uid},
                {"op": "add", "path": "/status", "value": status},
            ],
            content_type=JSON_PATCH,
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
        self,
        involved: Mapping[str, Any],
        resource: ResourceInfo,
        *,
        reason: str,
        message: str,
        warning: bool,
        event_id: str | None,
    ) -> None:
        """Post an Event; one with an `event_id` is named after it, so posting it again changes nothing."""
        meta = involved["metadata"]
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": (
                {"name": f"{meta['name'][:200]}.{event_id}", "namespace": meta["namespace"]}
                if event_id
                else {"generateName": f"{meta['name'][:200]}.", "namespace": meta["namespace"]}
            ),
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
        try:
            await self._request(
                "POST", f"/api/v1/namespaces/{meta['namespace']}/events", body=event, content_type="application/json"
            )
        except KubeError as error:
            if not (event_id and error.status == 409):  # 409 AlreadyExists: said before
                raise

    async def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        """The Secret's data, decoded; None if there is no such Secret."""
        found = await self.read_data("secrets", namespace, name)
        return found[0] if found is not None else None

    async def read_data(
        self, plural: Literal["secrets", "configmaps"], namespace: str, name: str
    ) -> tuple[dict[str, str], str] | None:
        """A Secret's or ConfigMap's data (decoded) and resourceVersion; None if there is no such object."""
        found = await self._request("GET", f"/api/v1/namespaces/{namespace}/{plural}/{name}")
        if found is None:
            return None
        data = found.get("data") or {}
        if plural == "secrets":
            data = {key: base64.b64decode(value).decode("utf-8", errors="replace") for key, value in data.items()}
        return dict(data), str(found["metadata"].get("resourceVersion") or "")

    async def may(self, verb: str, group: str, resource: str, subresource: str, namespace: str) -> bool:
        """Whether this client's user may make the call (a SelfSubjectAccessReview; namespace "" = all)."""
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "verb": verb,
                    "group": group,
                    "resource": resource,
                    "subresource": subresource,
                    "namespace": namespace,
                }
            },
        }
        answer = await self._request(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            body=review,
            content_type="application/json",
            counted=False,
        )
        return bool(answer and answer.get("status", {}).get("allowed"))

    @staticmethod
    def _revisions(namespace: str) -> str:
        return f"/apis/apps/v1/namespaces/{namespace}/controllerrevisions"

    async def create_revision(self, revision: Mapping[str, Any]) -> None:
        """Create a ControllerRevision; one already there under its name (409) is the same record."""
        try:
            await self._request(
                "POST",
                self._revisions(revision["metadata"]["namespace"]),
                body=revision,
                content_type="application/json",
            )
        except KubeError as error:
            if error.status != 409:
                raise

    async def read_revision(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._request("GET", f"{self._revisions(namespace)}/{name}")

    async def list_revisions(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        listing = await self._request(
            "GET", f"{self._revisions(namespace)}?labelSelector={urllib.parse.quote(label_selector)}"
        )
        return list((listing or {}).get("items") or [])

    async def delete_revision(self, namespace: str, name: str) -> None:
        await self._request("DELETE", f"{self._revisions(namespace)}/{name}")

    @staticmethod
    def _leases(namespace: str) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"

    async def read_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Lease, or None if there is none."""
        return await self._request("GET", f"{self._leases(namespace)}/{name}")

    async def create_lease(self, namespace: str, name: str, spec: Mapping[str, Any]) -> dict[str, Any] | None:
        """Create the Lease; 409 if another created it first."""
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name}, "spec": spec}
        return await self._request(
            "POST", self._leases(namespace), body=lease, content_type="application/json", counted=False
        )

    async def replace_lease(
        self, namespace: str, name: str, resource_version: str, spec: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Replace the Lease's spec if it is still at `resource_version` (409 otherwise); None if it is gone."""
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": resource_version},
            "spec": spec,
        }
        return await self._request(
            "PUT", f"{self._leases(namespace)}/{name}", body=lease, content_type="application/json", counted=False
        )

    async def ping(self) -> None:
        """Raise unless the API server says it is ready. Every authenticated client may read /readyz, so
        this proves the address, the credentials and the API server's own health (etcd included)."""
        session = await self._session_or_new()
        try:
            async with session.get(self._base + "/readyz", headers=self._headers()) as response:
                if response.status != 200:
                    text = await response.text()
                    failed = [line for line in text.splitlines() if line.startswith("[-]")]
                    raise KubeError(response.status, "; ".join(failed) or text.strip()[:200])
        except aiohttp.ClientConnectorError as error:
            raise ConnectionError(f"cannot connect to {error.host}:{error.port}: {error.os_error}") from None
        except (aiohttp.ClientError, TimeoutError) as error:
            raise ConnectionError(f"no answer from the API server: {error!r}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
