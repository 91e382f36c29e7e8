"""The stack's NiFi servers, through nipyapi: a flow runs on `nifi`; `nifi-secure` authorizes by certificate.

`nifi` (plain HTTP) is started by `hack/stack up`; `nifi-secure` (HTTPS,
client certificates, file-based users and policies) only on request, so this
module starts it and leaves it running, as test_search_tls.py does with
opensearch-secure (and starts `nifi` too when it is not running). Neither needs
Kubernetes, so this module replaces the session's `stack` fixture (which fails
without a Kubernetes API server) with one that only reads `hack/stack env`: it
runs with nothing but the NiFi servers up.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.request
from collections.abc import Iterator
from typing import Any

import nipyapi
import pytest
from nipyapi.nifi.rest import ApiException

from tests.integration.helpers import run_stack, stack_environment, unique, wait_for
from tests.nifi_flows import NIFI_VERSION, generate_update_log


@pytest.fixture(scope="module")
def stack() -> dict[str, str]:
    """The stack's environment, without the Kubernetes check of the session's `stack` fixture."""
    os.environ.update(stack_environment())
    return dict(os.environ)


NIPYAPI_SETTINGS = ("host", "verify_ssl", "ssl_ca_cert", "cert_file", "key_file")


@pytest.fixture(scope="module", autouse=True)
def nipyapi_restored() -> Iterator[None]:
    """nipyapi's configuration is global: leave it to the next module as this one found it."""
    config = nipyapi.config.nifi_config
    saved = {name: getattr(config, name) for name in NIPYAPI_SETTINGS}
    yield
    for name, value in saved.items():
        setattr(config, name, value)
    config.api_client = None


def use_nifi(url: str, ca_file: str | None = None, client: tuple[str, str] | None = None) -> None:
    """Point nipyapi (its configuration is global) at one server, as one client certificate or none."""
    config = nipyapi.config.nifi_config
    config.host = url
    config.verify_ssl = ca_file is not None
    config.ssl_ca_cert = ca_file
    config.cert_file, config.key_file = client or (None, None)
    config.api_client = None  # the next call builds a client with these settings


@pytest.fixture(scope="module")
def running_nifi(stack: dict[str, str]) -> str:
    """nifi, which `hack/stack up` starts; started here too (at once if it runs), so the module runs alone."""
    run_stack("start", "nifi")
    return stack["NIFI_URL"]


@pytest.fixture
def nifi(running_nifi: str) -> str:
    use_nifi(running_nifi)
    return running_nifi


@pytest.fixture(scope="module")
def secure_nifi(stack: dict[str, str]) -> dict[str, str]:
    """nifi-secure, started if it is not running (and left running)."""
    run_stack("start", "nifi-secure")
    return stack


def as_admin(stack: dict[str, str]) -> None:
    client = (stack["NIFI_SECURE_CLIENT_CERT_FILE"], stack["NIFI_SECURE_CLIENT_KEY_FILE"])
    use_nifi(stack["NIFI_SECURE_URL"], stack["NIFI_SECURE_CA_FILE"], client)


def as_reader(stack: dict[str, str]) -> None:
    client = (stack["NIFI_SECURE_READER_CLIENT_CERT_FILE"], stack["NIFI_SECURE_READER_CLIENT_KEY_FILE"])
    use_nifi(stack["NIFI_SECURE_URL"], stack["NIFI_SECURE_CA_FILE"], client)


def flow_definition(name: str) -> str:
    """GenerateFlowFile -> UpdateAttribute -> LogAttribute in the official bundles' coordinates, bound to
    no parameter context (deleting the group leaves nothing behind)."""
    flow = generate_update_log(name)
    tag = next(p for p in flow["flowContents"]["processors"] if p["name"] == "Tag")
    tag["properties"] = {"infometis.stage": "updated"}
    tag["propertyDescriptors"] = {}
    del flow["flowContents"]["parameterContextName"]
    flow["parameterContexts"] = {}
    return json.dumps(flow)


def processors_by_name(group_id: str) -> dict[str, Any]:
    listed = nipyapi.nifi.ProcessGroupsApi().get_processors(group_id).processors
    return {processor.component.name: processor for processor in listed}


def root_children() -> list[str]:
    """The names of the root process group's child groups."""
    groups = nipyapi.nifi.ProcessGroupsApi().get_process_groups("root").process_groups
    return [group.component.name for group in groups]


# --- hack/stack --------------------------------------------------------------------------------


def test_env_exports_both_servers_and_the_secure_ones_identities(stack: dict[str, str]) -> None:
    assert stack["NIFI_URL"] == "http://127.0.0.1:29080/nifi-api"
    assert stack["NIFI_SECURE_URL"] == "https://127.0.0.1:29443/nifi-api"
    assert stack["NIFI_SECURE_CA_FILE"].endswith("/pki/ca.crt")
    files = [stack[f"NIFI_SECURE{who}_CLIENT_{part}_FILE"] for who in ("", "_READER") for part in ("CERT", "KEY")]
    assert len(set(files)) == 4, files


def test_status_shows_nifi_ready_at_its_address(nifi: str) -> None:
    rows = [line.split() for line in run_stack("status").splitlines()]
    assert any(row[:2] == ["nifi", "ready"] and nifi in row for row in rows), rows


# --- nifi --------------------------------------------------------------------------------------


def test_nifi_answers_with_its_version(nifi: str) -> None:
    assert nifi.endswith("/nifi-api")
    assert nipyapi.system.get_nifi_version_info().ni_fi_version == NIFI_VERSION


def test_an_uploaded_flow_runs_on_the_built_bundles_and_is_removed(nifi: str) -> None:
    name = unique("it-flow")
    root = nipyapi.canvas.get_root_pg_id()
    group = nipyapi.versioning.import_process_group_definition(root, flow_definition=flow_definition(name))
    try:
        processors = processors_by_name(group.id)
        assert sorted(processors) == ["Generate", "Log", "Tag"]
        for processor in processors.values():
            # A bundle NiFi lacks would leave a ghost processor (extensionMissing, INVALID).
            assert not processor.component.extension_missing, processor.component.bundle
            assert processor.component.validation_status == "VALID", processor.component.validation_errors
        assert processors["Tag"].component.bundle.artifact == "nifi-update-attribute-nar"

        assert nipyapi.canvas.schedule_process_group(group.id, True)

        def logged() -> int:
            log = processors_by_name(group.id)["Log"]
            return int(log.status.aggregate_snapshot.flow_files_in)

        wait_for(logged, timeout=60, what="LogAttribute to receive a FlowFile through UpdateAttribute")
        assert {p.status.run_status for p in processors_by_name(group.id).values()} == {"Running"}
        assert nipyapi.canvas.schedule_process_group(group.id, False)
        assert {p.status.run_status for p in processors_by_name(group.id).values()} == {"Stopped"}
    finally:
        nipyapi.canvas.schedule_process_group(group.id, False)
        nipyapi.canvas.delete_process_group(group, force=True)
    assert name not in root_children()


# --- nifi-secure -------------------------------------------------------------------------------


def test_secure_admin_lists_and_creates_process_groups(secure_nifi: dict[str, str]) -> None:
    as_admin(secure_nifi)
    name = unique("it-admin")
    user = nipyapi.nifi.FlowApi().get_current_user()
    assert user.identity == "infometis"
    group = nipyapi.canvas.create_process_group("root", name, location=(0.0, 0.0), identifier_type="id")
    try:
        assert name in root_children()
    finally:
        nipyapi.canvas.delete_process_group(group)
    assert name not in root_children()


def test_secure_reader_may_look_but_not_change(secure_nifi: dict[str, str]) -> None:
    as_reader(secure_nifi)
    assert nipyapi.nifi.FlowApi().get_current_user().identity == "reader"
    root_children()  # reading is allowed
    root = nipyapi.nifi.ProcessGroupsApi().get_process_group("root")
    body = nipyapi.nifi.ProcessGroupEntity(
        revision={"version": 0},
        component=nipyapi.nifi.ProcessGroupDTO(name=unique("it-reader"), position={"x": 0.0, "y": 0.0}),
    )
    with pytest.raises(ApiException) as refused:
        nipyapi.nifi.ProcessGroupsApi().create_process_group(id=root.id, body=body)
    assert refused.value.status == 403, refused.value.body


def test_secure_refuses_a_client_without_certificate(secure_nifi: dict[str, str]) -> None:
    """With no login provider configured, NiFi demands a client certificate in the TLS handshake itself."""
    context = ssl.create_default_context(cafile=secure_nifi["NIFI_SECURE_CA_FILE"])
    about = f"{secure_nifi['NIFI_SECURE_URL']}/flow/about"
    # TLS 1.3: the server's alert reaches the client when it sends its request or reads the answer.
    with pytest.raises(OSError) as refused, urllib.request.urlopen(about, timeout=10, context=context):
        pass
    assert "CERTIFICATE_REQUIRED" in str(refused.value), refused.value
