"""ElasticsearchIndex against a secured server: HTTPS checked against a CA, basic auth, and refusals.

The server is the stack's opensearch-secure (OpenSearch 3.4.0 with its
security plugin: TLS with the stack's CA, internal users, roles), which a
plain `hack/stack up` does not start: this module starts it and leaves it
running. Every connection is a clusterRef Secret, as a tenant would write it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import opensearchpy
import pytest

from tests.integration.conftest import RunningOperator
from tests.integration.helpers import (
    apply,
    condition,
    create_secret,
    everything_visible,
    replace_secret,
    run_stack,
    unique,
    wait_ready,
    wait_reason,
)
from tests.integration.search import PLURAL, SearchServer, search_index
from tests.pki import other_ca_pem

WRONG_PASSWORD = "wrong-7c41e9d2b5-planted"  # distinctive: any occurrence is a leak
SETTINGS = {"number_of_shards": 1, "number_of_replicas": 0}


@pytest.fixture(scope="module")
def secure_server(stack: dict[str, str]) -> Iterator[SearchServer]:
    """opensearch-secure, started if it is not running (and left running), read as its operator user."""
    run_stack("start", "opensearch-secure")
    api = opensearchpy.OpenSearch(
        hosts=[stack["OPENSEARCH_SECURE_URL"]],
        http_auth=(stack["OPENSEARCH_SECURE_USERNAME"], stack["OPENSEARCH_SECURE_PASSWORD"]),
        ca_certs=stack["OPENSEARCH_SECURE_CA_FILE"],
        verify_certs=True,
        timeout=30,
    )
    yield SearchServer("opensearch-secure", stack["OPENSEARCH_SECURE_URL"], api)
    api.close()


def connection(stack: dict[str, str], **overrides: str | None) -> dict[str, str]:
    """A Secret's data for opensearch-secure: URL, the operator's user, the CA inline; None drops a key."""
    data: dict[str, str | None] = {
        "url": stack["OPENSEARCH_SECURE_URL"],
        "username": stack["OPENSEARCH_SECURE_USERNAME"],
        "password": stack["OPENSEARCH_SECURE_PASSWORD"],
        "ca.crt": Path(stack["OPENSEARCH_SECURE_CA_FILE"]).read_text(),
        **overrides,
    }
    return {key: value for key, value in data.items() if value is not None}


def index_with(namespace: str, secret: str, data: dict[str, str]) -> str:
    create_secret(namespace, secret, data)
    name = unique(secret)
    apply(namespace, search_index(name, cluster_ref=secret, settings=SETTINGS))
    return name


def message(obj: dict[str, Any], kind: str) -> str:
    found = condition(obj, kind)
    assert found is not None, f"no {kind} condition: {obj.get('status')}"
    return str(found["message"])


def assert_no_password_shown(namespace: str, operator: RunningOperator, stack: dict[str, str]) -> None:
    """Names, never values, in the failure: the assertion message must not be a leak of its own."""
    visible = everything_visible(namespace, operator, PLURAL)
    planted = {
        "the operator user's password": stack["OPENSEARCH_SECURE_PASSWORD"],
        "the reader's password": stack["OPENSEARCH_SECURE_READER_PASSWORD"],
        "the wrong password": WRONG_PASSWORD,
    }
    assert [what for what, value in planted.items() if value in visible] == []


def test_https_with_basic_auth_and_the_ca_creates_the_index(
    operator: RunningOperator, namespace: str, stack: dict[str, str], secure_server: SearchServer
) -> None:
    name = index_with(namespace, "secured", connection(stack))

    obj = wait_ready(namespace, name, plural=PLURAL)

    index = secure_server.index(name)  # read back with the CA and the operator user's credentials
    assert index is not None
    assert obj["status"]["indexUuid"] == index["settings"]["index.uuid"]
    assert index["settings"]["index.number_of_replicas"] == "0"
    assert_no_password_shown(namespace, operator, stack)


def test_a_wrong_password_stalls_as_not_authorized_until_the_secret_is_fixed(
    operator: RunningOperator, namespace: str, stack: dict[str, str], secure_server: SearchServer
) -> None:
    name = index_with(namespace, "login", connection(stack, password=WRONG_PASSWORD))

    obj = wait_reason(namespace, name, "False", "NotAuthorized", plural=PLURAL)
    said = message(obj, "Stalled")
    assert said == (
        f"The server refused reading index '{name}' to {stack['OPENSEARCH_SECURE_URL']} (secret {namespace}/login): "
        "Unauthorized"
    ), said
    assert secure_server.index(name) is None

    replace_secret(namespace, "login", connection(stack))
    wait_ready(namespace, name, plural=PLURAL)
    assert secure_server.index(name) is not None
    assert_no_password_shown(namespace, operator, stack)


def test_a_user_who_may_only_read_is_refused_in_the_servers_words(
    operator: RunningOperator, namespace: str, stack: dict[str, str], secure_server: SearchServer
) -> None:
    reader = connection(
        stack, username=stack["OPENSEARCH_SECURE_READER_USERNAME"], password=stack["OPENSEARCH_SECURE_READER_PASSWORD"]
    )
    name = index_with(namespace, "reader", reader)

    obj = wait_reason(namespace, name, "False", "NotAuthorized", plural=PLURAL)
    said = message(obj, "Stalled")
    assert said.startswith(
        f"The server refused creating index '{name}' to {stack['OPENSEARCH_SECURE_URL']} (secret {namespace}/reader): "
        "security_exception: no permissions for [indices:admin/create] and User [name=reader"
    ), said
    assert secure_server.index(name) is None
    assert_no_password_shown(namespace, operator, stack)


@pytest.mark.parametrize("trusted", ["no ca.crt", "another CA"])
def test_an_unverified_certificate_is_not_trusted_unless_the_secret_says_skip(
    operator: RunningOperator, namespace: str, stack: dict[str, str], secure_server: SearchServer, trusted: str
) -> None:
    """Verification is on by default (the system's CAs do not know the stack's); only an explicit opt-out skips it."""
    ca = None if trusted == "no ca.crt" else other_ca_pem()
    name = index_with(namespace, "untrusted", connection(stack, **{"ca.crt": ca}))

    obj = wait_reason(namespace, name, "False", "ProgressingWithRetry", plural=PLURAL)
    said = message(obj, "Reconciling")
    assert f"{stack['OPENSEARCH_SECURE_URL']} (secret {namespace}/untrusted): " in said, said
    assert "the server's TLS certificate could not be verified (" in said, said
    assert "ca.crt must hold the CA certificate that signed it" in said, said
    assert secure_server.index(name) is None

    replace_secret(namespace, "untrusted", connection(stack, **{"ca.crt": None, "insecureSkipTlsVerify": "true"}))
    wait_ready(namespace, name, plural=PLURAL)
    assert secure_server.index(name) is not None
    assert_no_password_shown(namespace, operator, stack)


def test_plain_http_to_the_https_port_fails_plainly(
    operator: RunningOperator, namespace: str, stack: dict[str, str], secure_server: SearchServer
) -> None:
    http = stack["OPENSEARCH_SECURE_URL"].replace("https://", "http://")
    name = index_with(namespace, "plain", connection(stack, url=http, **{"ca.crt": None}))

    obj = wait_reason(namespace, name, "False", "ProgressingWithRetry", plural=PLURAL)
    said = message(obj, "Reconciling")
    assert said.startswith(f"{http} (secret {namespace}/plain): "), said
    assert "Server disconnected" in said and "url must start with https://" in said, said
    assert secure_server.index(name) is None
    assert_no_password_shown(namespace, operator, stack)
