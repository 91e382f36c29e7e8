"""crds/ must be exactly what the pydantic models generate (`make crds`)."""

from __future__ import annotations

from pathlib import Path

from controllers.crdgen import ALL_CRDS, KUSTOMIZATION, file_name, render

CRDS = Path(__file__).resolve().parents[2] / "crds"


def test_committed_crds_match_the_models() -> None:
    for info in ALL_CRDS:
        assert (CRDS / file_name(info)).read_text() == render(info), f"crds/{file_name(info)} is stale: run `make crds`"


def test_crds_folder_lists_every_crd_for_kustomize() -> None:
    assert (CRDS / "kustomization.yaml").read_text() == KUSTOMIZATION
