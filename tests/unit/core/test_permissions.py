"""The permissions check: which calls a kind needs, and how denials show in /readyz and the log."""

from __future__ import annotations

import logging

import pytest

from controllers.core.objects import ResourceInfo
from controllers.core.permissions import Access, Permissions, required_access

TOPICS = ResourceInfo("infometis.io", "v1alpha1", "kafkatopics", "KafkaTopic")
log = logging.getLogger("test.permissions")


def test_a_kind_needs_exactly_the_calls_its_role_grants() -> None:
    assert {str(access) for access in required_access(TOPICS, ("secrets",), ())} == {
        "list kafkatopics.infometis.io in all namespaces",
        "watch kafkatopics.infometis.io in all namespaces",
        "patch kafkatopics.infometis.io in all namespaces",
        "patch kafkatopics/status.infometis.io in all namespaces",
        "create events in all namespaces",
        "get secrets in all namespaces",
        "list changeapprovals.infometis.io in all namespaces",
        "watch changeapprovals.infometis.io in all namespaces",
        "patch changeapprovals/status.infometis.io in all namespaces",
        "create controllerrevisions.apps in all namespaces",
        "get controllerrevisions.apps in all namespaces",
        "list controllerrevisions.apps in all namespaces",
        "delete controllerrevisions.apps in all namespaces",
    }


def test_an_operator_watching_namespaces_needs_the_calls_in_each() -> None:
    needed = required_access(TOPICS, ("secrets", "configmaps"), ("team-a", "team-b"))
    assert {access.namespace for access in needed} == {"team-a", "team-b"}
    assert Access("get", "", "configmaps", namespace="team-b") in needed


class Role:
    """What the API server would answer, as a set of allowed calls the test changes."""

    def __init__(self, allowed: set[Access]) -> None:
        self.allowed = allowed

    async def review(self, access: Access) -> bool:
        return access in self.allowed


async def test_denied_calls_fail_readiness_by_name_and_are_logged_once_until_granted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=log.name)
    needed = required_access(TOPICS, ("secrets",), ())
    role = Role(set(needed))
    permissions = Permissions("the KafkaTopic controller", needed, role.review, logger=log)
    assert permissions.check() == "not checked yet"
    await permissions.check_once()
    assert permissions.check() is None

    role.allowed = {access for access in needed if access.resource != "kafkatopics"}
    caplog.clear()
    await permissions.check_once()
    await permissions.check_once()
    problem = permissions.check()
    assert problem is not None and problem.startswith("permission denied: may not list kafkatopics.infometis.io")
    assert "patch kafkatopics/status.infometis.io" in problem and "secrets" not in problem
    denials = [record for record in caplog.records if "lacks permissions" in record.getMessage()]
    assert len(denials) == 1 and denials[0].levelno == logging.ERROR
    assert "may not list kafkatopics.infometis.io in all namespaces" in denials[0].getMessage()

    role.allowed = set(needed)
    caplog.clear()
    await permissions.check_once()
    assert permissions.check() is None
    assert [record.getMessage() for record in caplog.records] == [
        "the KafkaTopic controller has every permission it needs again"
    ]


async def test_an_unanswered_review_leaves_the_last_answer_standing() -> None:
    """The API server away is its own probe's to report: the permissions check neither fails nor passes on it."""
    needed = required_access(TOPICS, (), ())
    role = Role(set(needed))
    answering = True

    async def review(access: Access) -> bool:
        if not answering:
            raise ConnectionError("cannot connect to 127.0.0.1:26443")
        return await role.review(access)

    permissions = Permissions("the KafkaTopic controller", needed, review, logger=log)
    answering = False
    await permissions.check_once()
    assert permissions.check() == "not checked yet"
    answering = True
    await permissions.check_once()
    answering = False
    await permissions.check_once()
    assert permissions.check() is None
