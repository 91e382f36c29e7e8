"""The search client's pure helpers for migrations, fed the responses the real servers gave."""

from __future__ import annotations

from controllers.elasticsearchindex.client import _copies, _copy_task
from controllers.elasticsearchindex.migration import version_of
from controllers.elasticsearchindex.state import CopyTask

NAME = "orders"


def test_version_of_reads_only_the_operators_scheme() -> None:
    assert (version_of(NAME, "orders-v12"), version_of(NAME, NAME), version_of(NAME, "orders-vx")) == (12, 0, 0)


def test_copy_descriptions_of_both_servers_are_recognised() -> None:
    assert _copies("reindex from [a] to [a-v1]", "a", "a-v1")  # OpenSearch
    assert _copies("reindex from [a] to [a-v1][_doc]", "a", "a-v1")  # Elasticsearch 7.17
    assert not _copies("reindex from [a] to [a-v10]", "a", "a-v1")
    assert not _copies("reindex from [ab] to [a-v1]", "a", "a-v1")


def test_task_results_are_read_with_their_progress_and_failures() -> None:
    running = {"completed": False, "task": {"status": {"total": 4, "created": 1, "updated": 1}}}
    assert _copy_task("n:1", False, running) == CopyTask("n:1", False, False, total=4, copied=2)
    done = {
        "completed": True,
        "task": {"status": {"total": 4}},
        "response": {"total": 4, "created": 3, "updated": 0, "failures": [], "timed_out": False},
    }
    assert _copy_task("n:1", True, done) == CopyTask("n:1", True, True, total=4, copied=3)
    failed = {
        "completed": True,
        "response": {
            "total": 2,
            "created": 1,
            "failures": [
                {"index": "t", "id": "7", "cause": {"type": "mapper_parsing_exception", "reason": "bad"}, "status": 400}
            ],
        },
    }
    assert _copy_task("n:1", False, failed).failures == ("document '7': mapper_parsing_exception: bad",)
    errored = {"completed": True, "error": {"type": "index_not_found_exception", "reason": "no such index"}}
    assert _copy_task("n:1", False, errored).failures == ("index_not_found_exception: no such index",)
