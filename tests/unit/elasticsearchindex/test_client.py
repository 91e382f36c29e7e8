"""How the search client reads the servers' errors: refused (stall) or unavailable (retry)."""

from __future__ import annotations

import json

import opensearchpy

from controllers.elasticsearchindex.client import SearchRefused, SearchUnavailable, translate


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
