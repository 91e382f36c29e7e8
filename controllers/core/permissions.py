"""Whether the operator's ServiceAccount may make the calls a kind needs, as a readiness check.

A controller whose role is missing (a ClusterRoleBinding deleted, a rule
left out) would otherwise fail quietly, call by call. Instead it asks the API
server (SelfSubjectAccessReview, which every authenticated user may create)
for each call it makes, says in one log line which ones are denied, and
/readyz fails naming them, so the Pod shows not Ready; liveness is not
touched, so a missing role never becomes a restart loop. It asks again every
interval, and recovers by itself once the role is back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from controllers.core.approval import CHANGE_APPROVAL
from controllers.core.objects import ResourceInfo

# Asked at start and then at this interval: a role rarely changes, and each check is a few requests.
CHECK_INTERVAL_SECONDS = 30.0


@dataclass(frozen=True)
class Access:
    """One call: `verb` on `resource` (and `subresource`) of API `group`, in `namespace` ("" = all)."""

    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespace: str = ""

    def __str__(self) -> str:
        what = self.resource + (f"/{self.subresource}" if self.subresource else "")
        where = f"in namespace {self.namespace}" if self.namespace else "in all namespaces"
        return f"{self.verb} {what}{'.' + self.group if self.group else ''} {where}"


def required_access(resource: ResourceInfo, reads: Sequence[str], namespaces: Sequence[str]) -> tuple[Access, ...]:
    """The calls a kind's controller makes in each watched namespace: watch and list its objects, patch their
    finalizers and status, create Events, read ChangeApprovals and write their status, keep ControllerRevisions,
    and get the core objects it `reads` (Secrets, ConfigMaps)."""
    needed: list[Access] = []
    for namespace in namespaces or ("",):
        needed += [
            Access("list", resource.group, resource.plural, namespace=namespace),
            Access("watch", resource.group, resource.plural, namespace=namespace),
            Access("patch", resource.group, resource.plural, namespace=namespace),
            Access("patch", resource.group, resource.plural, "status", namespace),
            Access("create", "", "events", namespace=namespace),
            # ChangeApprovals: read to apply approved plans, their status written to say what became of them.
            Access("list", CHANGE_APPROVAL.group, CHANGE_APPROVAL.plural, namespace=namespace),
            Access("watch", CHANGE_APPROVAL.group, CHANGE_APPROVAL.plural, namespace=namespace),
            Access("patch", CHANGE_APPROVAL.group, CHANGE_APPROVAL.plural, "status", namespace),
            # The history of applied specs: recorded, read for a rollback, the oldest deleted.
            *(
                Access(verb, "apps", "controllerrevisions", namespace=namespace)
                for verb in ("create", "get", "list", "delete")
            ),
        ]
        needed += [Access("get", "", plural, namespace=namespace) for plural in reads]
    return tuple(needed)


AccessReview = Callable[[Access], Awaitable[bool]]
"""Whether the API server allows one call (raises when it cannot say)."""


class Permissions:
    """The denied calls as the latest check found them; logged when they change."""

    def __init__(self, what: str, needed: Sequence[Access], review: AccessReview, *, logger: logging.Logger) -> None:
        self._what = what
        self._needed = tuple(needed)
        self._review = review
        self._log = logger
        self._denied: tuple[Access, ...] | None = None  # None: not checked yet

    async def check_once(self) -> None:
        try:
            allowed = [await self._review(access) for access in self._needed]
        except Exception as error:
            # The API server could not say (it is away): its own probe reports that; the last answer stands.
            self._log.debug("%s: permissions not checked: %s", self._what, error)
            return
        denied = tuple(access for access, ok in zip(self._needed, allowed, strict=True) if not ok)
        if denied and denied != self._denied:
            self._log.error(
                "%s lacks permissions: the ServiceAccount may not %s; grant them (config/kustomize/base/rbac)",
                self._what,
                "; ".join(map(str, denied)),
            )
        elif not denied and self._denied:
            self._log.info("%s has every permission it needs again", self._what)
        self._denied = denied

    def check(self) -> str | None:
        """For /readyz: None when every call is allowed."""
        if self._denied is None:
            return "not checked yet"
        if self._denied:
            return "permission denied: may not " + "; ".join(map(str, self._denied))
        return None

    async def check_forever(self, interval: float = CHECK_INTERVAL_SECONDS) -> None:
        while True:
            await self.check_once()
            await asyncio.sleep(interval)
