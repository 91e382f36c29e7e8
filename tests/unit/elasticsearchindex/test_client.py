"""How the search client reads the servers' errors: refused (stall) or unavailable (retry); how it connects."""

from __future__ import annotations

import base64
import json
import ssl
import warnings

import opensearchpy
import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig, TlsError, TransportApiResponse

from controllers.core.connections import Connection
from controllers.elasticsearchindex.client import (
    SearchClient,
    SearchRefused,
    SearchUnavailable,
    _elasticsearch,
    _opensearch,
    translate,
)
from controllers.elasticsearchindex.connection import SEARCH_CONNECTION


def error_body(error_type: str, reason: str, status: int) -> dict[str, object]:
    return {"error": {"root_cause": [{"type": error_type, "reason": reason}], "type": error_type, "reason": reason},
            "status": status}  # fmt: skip


def test_a_4xx_is_refused_with_the_servers_type_and_reason() -> None:
    body = error_body("resource_already_exists_exception", "index [a] already exists", 400)
    translated = translate(opensearchpy.RequestError(400, "resource_already_exists_exception", body))
    assert isinstance(translated, SearchRefused)
    assert (translated.status, translated.error_type) == (400, "resource_already_exists_exception")
    assert str(translated) == "resource_already_exists_exception: index [a] already exists"


def test_a_500_that_is_a_refusal_is_not_retried_forever() -> None:
    # An alias given a second write index is answered 500 by the servers; the same request fails again.
    reason = "alias [a] has more than one write index [x,y]"
    raw = json.dumps(error_body("illegal_state_exception", reason, 500))
    translated = translate(opensearchpy.TransportError(500, raw))
    assert isinstance(translated, SearchRefused)
    assert translated.reason == reason


def test_throttling_timeouts_and_server_errors_are_retried() -> None:
    for status in (429, 408, 503):
        translated = translate(opensearchpy.TransportError(status, "busy", error_body("es_rejected", "busy", status)))
        assert isinstance(translated, SearchUnavailable), status
    assert isinstance(translate(opensearchpy.ConnectionError("N/A", "refused", None)), SearchUnavailable)


# --- connecting: credentials on the first request, TLS failures said plainly -----------------

SECRET = "s3cret-planted-pw"


def connection(**properties: str) -> Connection:
    return Connection("secret team/search", properties, SEARCH_CONNECTION.secret)


class RecordingTransport:
    """Stands in for the elasticsearch client's transport: answers GET / with `status` and `body`."""

    def __init__(self, status: int, body: object) -> None:
        self.status, self.body = status, body
        self.headers: list[dict[str, str]] = []

    async def perform_request(self, method: str, path: str, *, headers: dict[str, str]) -> TransportApiResponse:
        self.headers.append(dict(headers))
        node = NodeConfig("https", "127.0.0.1", 9200)
        meta = ApiResponseMeta(self.status, "1.1", HttpHeaders({"content-type": "text/plain"}), 0.01, node)
        return TransportApiResponse(meta, self.body)


async def first_request(client: SearchClient, transport: RecordingTransport) -> None:
    client._api = _elasticsearch(client.connection, client._context)
    await client._api.close()
    client._api.transport.perform_request = transport.perform_request  # type: ignore[method-assign]
    try:
        await client.cluster()
    finally:
        client._api = None


async def test_the_first_request_carries_the_secrets_credentials() -> None:
    # The elasticsearch client adds credentials to its own calls, not to its transport's.
    transport = RecordingTransport(200, {"cluster_uuid": "u1", "version": {"number": "9.5.3"}})
    basic = SearchClient(connection(url="https://127.0.0.1:9200", username="op", password=SECRET), linger=0.01)
    await first_request(basic, transport)
    expected = base64.b64encode(f"op:{SECRET}".encode()).decode()
    assert transport.headers[-1]["authorization"] == f"Basic {expected}"
    assert basic._facts is not None and basic._facts.uuid == "u1"

    keyed = SearchClient(connection(url="https://127.0.0.1:9200", apiKey="a2V5"), linger=0.01)
    await first_request(keyed, transport)
    assert transport.headers[-1]["authorization"] == "ApiKey a2V5"


async def test_a_refused_login_is_a_refusal_not_a_crash() -> None:
    client = SearchClient(connection(url="https://127.0.0.1:9200", username="op", password=SECRET), linger=0.01)
    with pytest.raises(SearchRefused) as refused:
        await first_request(client, RecordingTransport(401, "Unauthorized"))
    assert (refused.value.status, str(refused.value)) == (401, "Unauthorized")


async def test_an_answer_that_is_not_the_servers_description_is_retried() -> None:
    client = SearchClient(connection(url="http://127.0.0.1:9200"), linger=0.01)
    with pytest.raises(SearchUnavailable, match="not the server's description"):
        await first_request(client, RecordingTransport(200, "<html>a proxy's page</html>"))


VERIFY_FAILED = (
    "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate (_ssl.c:1006)"
)


def test_a_certificate_that_fails_verification_is_said_so_by_either_library() -> None:
    for error in (
        TlsError("TLS error", errors=(ssl.SSLCertVerificationError(1, VERIFY_FAILED),)),
        opensearchpy.SSLError("N/A", VERIFY_FAILED, ssl.SSLCertVerificationError(1, VERIFY_FAILED)),
    ):
        translated = translate(error)
        assert isinstance(translated, SearchUnavailable), error
        assert str(translated) == (
            "the server's TLS certificate could not be verified (unable to get local issuer certificate): "
            "ca.crt must hold the CA certificate that signed it"
        )


def test_plain_http_to_a_tls_port_hints_at_the_scheme() -> None:
    disconnected = SearchUnavailable("Connection error caused by: ServerDisconnectedError(Server disconnected)")
    plain = SearchClient(connection(url="http://127.0.0.1:9200", username="op", password=SECRET), linger=0.01)
    assert plain.explain(disconnected).endswith("(if the server speaks only HTTPS, url must start with https://)")
    secure = SearchClient(connection(url="https://127.0.0.1:9200", username="op", password=SECRET), linger=0.01)
    assert "https://)" not in secure.explain(disconnected)


def test_opensearch_gets_the_tls_context_alone() -> None:
    # opensearch-py warns "When using `ssl_context`, all other SSL related kwargs are ignored" at any other.
    for verify in ("false", "true"):
        client = SearchClient(
            connection(url="https://127.0.0.1:9200", insecureSkipTlsVerify=verify, username="op", password=SECRET),
            linger=0.01,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            warnings.filterwarnings("ignore", category=DeprecationWarning)  # aiohttp's, about BasicAuth
            api = _opensearch(client.connection, client._context)
        assert api.transport.kwargs["ssl_context"] is client._context
