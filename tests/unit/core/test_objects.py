"""merge_patch: the status write that turns the old status into the new one."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from controllers.core.objects import merge_patch

keys = st.sampled_from("abc")
leaves = st.one_of(st.integers(0, 3), st.sampled_from(["x", "y"]), st.lists(st.integers(0, 2), max_size=2))
documents = st.dictionaries(
    keys, st.one_of(leaves, st.dictionaries(keys, st.one_of(leaves, st.dictionaries(keys, leaves)))), max_size=3
)


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies it."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


@given(documents, documents)
def test_applying_the_patch_to_old_gives_new(old: dict[str, Any], new: dict[str, Any]) -> None:
    assert apply_merge_patch(old, merge_patch(old, new)) == new


@given(documents)
def test_no_change_gives_an_empty_patch(document: dict[str, Any]) -> None:
    assert merge_patch(document, document) == {}


def test_removed_fields_are_nulled_and_lists_replaced_whole() -> None:
    old = {"drift": [{"field": "a"}], "conditions": [1, 2], "topicId": "x"}
    new = {"conditions": [1], "topicId": "x"}
    assert merge_patch(old, new) == {"drift": None, "conditions": [1]}
