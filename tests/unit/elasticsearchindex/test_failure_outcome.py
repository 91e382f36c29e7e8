"""How a refused ElasticsearchIndex request shows on the object: what was refused, to whom, in the server's words."""

from __future__ import annotations

from typing import Any

from controllers.core.connections import Connection
from controllers.core.outcome import Outcome, Phase
from controllers.elasticsearchindex.client import SearchClient, SearchRefused
from controllers.elasticsearchindex.connection import SEARCH_CONNECTION
from controllers.elasticsearchindex.kind import NOT_AUTHORIZED, REFUSED, ElasticsearchIndexKind
from controllers.elasticsearchindex.plan import CreateIndex, UpdateSettings

PASSWORD = "pw-0a9f3c-planted"
KIND = ElasticsearchIndexKind(connections=None, clients=None, default_connection=None)  # type: ignore[arg-type]
CLIENT = SearchClient(
    Connection(
        "secret team/search",
        {"url": "https://search:9200", "username": "reader", "password": PASSWORD},
        SEARCH_CONNECTION.secret,
    ),
    linger=0.01,
)
CREATE = CreateIndex(index="orders", settings={"index.number_of_shards": "1"}, mappings={}, aliases={})
SETTINGS = UpdateSettings(index="orders", values={"index.refresh_interval": "5s"}, before={})
NO_RIGHTS = "no permissions for [indices:admin/create] and User [name=reader, backend_roles=[], requestedTenant=null]"


def failure_outcome(change: Any, error: Exception) -> Outcome:
    return KIND.failure(CLIENT, "orders", change, error)


def test_a_refusal_for_lack_of_rights_names_what_was_refused_and_the_connection() -> None:
    outcome = failure_outcome(CREATE, SearchRefused(403, "security_exception", NO_RIGHTS))
    assert (outcome.phase, outcome.reason) == (Phase.STALLED, NOT_AUTHORIZED)
    assert outcome.message == (
        "The server refused creating index 'orders' to https://search:9200 (secret team/search): "
        f"security_exception: {NO_RIGHTS}"
    )


def test_a_refused_login_while_reading_is_not_authorized_and_shows_no_password() -> None:
    outcome = failure_outcome(None, SearchRefused(401, "", f"Unauthorized (tried {PASSWORD})"))
    assert (outcome.phase, outcome.reason) == (Phase.STALLED, NOT_AUTHORIZED)
    assert outcome.message.startswith("The server refused reading index 'orders' to https://search:9200 (secret ")
    assert PASSWORD not in outcome.message


def test_other_refused_changes_say_the_change() -> None:
    outcome = failure_outcome(SETTINGS, SearchRefused(400, "illegal_argument_exception", "unknown setting"))
    assert (outcome.phase, outcome.reason) == (Phase.STALLED, REFUSED)
    assert outcome.message == (
        "The server refused changing index 'orders' (setting index.refresh_interval unset -> 5s): "
        "illegal_argument_exception: unknown setting"
    )
