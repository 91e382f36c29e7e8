"""Operator settings come from flags, else environment variables, else defaults."""

from __future__ import annotations

import pytest

from controllers.core.settings import parse_duration, parse_settings
from controllers.kafkatopic.connection import KAFKA_CONNECTION


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30.0), ("2m", 120.0), ("50ms", 0.05), ("15", 15.0)])
def test_durations_accept_units(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_defaults_without_flags_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "WATCH_NAMESPACE", "INFOMETIS_RESYNC_INTERVAL"):
        monkeypatch.delenv(name, raising=False)
    settings = parse_settings([], [KAFKA_CONNECTION])
    assert settings.resync_interval == 30
    assert settings.namespaces == ()
    assert settings.default_connections == {}


def test_environment_variables_configure_the_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("WATCH_NAMESPACE", "a,b")
    monkeypatch.setenv("INFOMETIS_RESYNC_INTERVAL", "1m")
    settings = parse_settings([], [KAFKA_CONNECTION])
    assert (settings.default_connections, settings.namespaces, settings.resync_interval) == (
        {"Kafka": {"bootstrap.servers": "kafka:9092"}},
        ("a", "b"),
        60,
    )


def test_flags_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCH_NAMESPACE", "a,b")
    assert parse_settings(["--namespace", "c"]).namespaces == ("c",)


def test_a_bad_duration_is_refused_with_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_settings(["--resync-interval", "soon"])
    assert "not a duration: 'soon'" in capsys.readouterr().err


def test_a_bad_environment_value_is_a_usage_error_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INFOMETIS_RESYNC_INTERVAL", "later")
    with pytest.raises(SystemExit):
        parse_settings([])
    assert "argument --resync-interval: not a duration: 'later'" in capsys.readouterr().err


def test_leader_election_is_off_by_default_and_needs_a_namespace_when_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("INFOMETIS_LEADER_ELECTION", "POD_NAMESPACE", "INFOMETIS_LOG_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    defaults = parse_settings([], [KAFKA_CONNECTION])
    assert (defaults.leader_election, defaults.log_format) == (False, "text")
    with pytest.raises(SystemExit):
        parse_settings(["--leader-election", "true"], [KAFKA_CONNECTION])
    assert "needs --leader-election-namespace" in capsys.readouterr().err
    monkeypatch.setenv("INFOMETIS_LEADER_ELECTION", "TRUE")
    monkeypatch.setenv("POD_NAMESPACE", "infometis-system")
    monkeypatch.setenv("INFOMETIS_LOG_FORMAT", "json")
    settings = parse_settings([], [KAFKA_CONNECTION])
    assert (settings.leader_election, settings.leader_election_namespace, settings.log_format) == (
        True,
        "infometis-system",
        "json",
    )


@pytest.mark.parametrize("argv", [["--leader-election", "yes"], ["--log-format", "xml"]])
def test_leader_election_and_log_format_refuse_other_values(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_settings(argv, [KAFKA_CONNECTION])
