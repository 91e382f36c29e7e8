"""The shipped argocd-cm and Helm values hold exactly the health scripts, one per kind."""

from __future__ import annotations

import yaml

from controllers.argocdgen import ARGOCD, FILES, config_key, script_path
from controllers.crdgen import RECONCILED_CRDS


def test_every_kind_has_a_health_script() -> None:
    assert [info.resource.kind for info in RECONCILED_CRDS if not script_path(info).is_file()] == []


def test_committed_argocd_config_matches_the_scripts() -> None:
    for name, render in FILES.items():
        assert (ARGOCD / name).read_text() == render(), f"config/argocd/{name} is stale: run `make argocd-config`"


def test_argocd_cm_carries_each_script_verbatim_under_its_kind_key() -> None:
    data = yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())["data"]
    values = yaml.safe_load((ARGOCD / "helm-values.yaml").read_text())["configs"]["cm"]
    for info in RECONCILED_CRDS:
        assert data[config_key(info)] == values[config_key(info)] == script_path(info).read_text()
    assert config_key(RECONCILED_CRDS[0]) == "resource.customizations.health.infometis.io_KafkaTopic"
