from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from controllers.core.heap import refreeze


class Node:
    def __init__(self) -> None:
        self.itself = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture(autouse=True)
def unfrozen_afterwards() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_refreeze_freezes_what_survives_so_full_collections_skip_it() -> None:
    held = Node()
    refreeze()
    assert gc.get_freeze_count() > 0
    assert not any(obj is held for obj in gc.get_objects())  # frozen: no generation walks it


def test_a_cycle_frozen_before_it_became_garbage_is_freed_by_the_next_refreeze() -> None:
    node = Node()
    gone = weakref.ref(node)
    refreeze()
    del node
    gc.collect()
    assert gone() is not None  # frozen: an ordinary full collection leaves it
    refreeze()
    assert gone() is None
