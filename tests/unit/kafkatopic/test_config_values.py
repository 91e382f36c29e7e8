"""same_config_value: a spec value matches the form Kafka stores it in, and nothing else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controllers.kafkatopic.plan import same_config_value

# What a Kafka 4.4 broker answered to DescribeConfigs after being given the first value.
STORED_BY_KAFKA = [
    ("compact, delete", "compact,delete"),
    ("compact ,delete", "compact,delete"),
    ("086400000", "86400000"),
    (" 1", "1"),
    ("1048576 ", "1048576"),
    ("+1000000", "1000000"),
    ("-01", "-1"),
    ("0.50", "0.5"),
    ("TRUE", "true"),
    ("True", "true"),
    ("LogAppendTime", "LogAppendTime"),
]


@pytest.mark.parametrize(("desired", "stored"), STORED_BY_KAFKA)
def test_a_value_kafka_normalized_on_storing_is_in_sync(desired: str, stored: str) -> None:
    assert same_config_value(desired, stored)


@pytest.mark.parametrize(
    ("desired", "stored"),
    [
        ("compact", "compact,delete"),
        ("delete,compact", "compact,delete"),
        ("86400000", "86400001"),
        ("9223372036854775807", "9223372036854775806"),  # longs compare exactly, not as floats
        ("0.5", "0.51"),
        ("true", "false"),
        ("Snappy", "snappy"),  # only booleans ignore case
        ("1", None),
    ],
)
def test_a_different_value_is_not_in_sync(desired: str, stored: str | None) -> None:
    assert not same_config_value(desired, stored)


@given(st.integers(-(2**63), 2**63 - 1), st.integers(0, 3), st.sampled_from(["", " ", "+"]))
def test_any_spelling_of_a_long_matches_its_canonical_form(number: int, zeros: int, prefix: str) -> None:
    sign, digits = ("-", str(-number)) if number < 0 else ("", str(number))
    spelled = (prefix if not sign else " ") + sign + "0" * zeros + digits
    assert same_config_value(spelled, str(number))
    assert not same_config_value(spelled, str(number + 1))
