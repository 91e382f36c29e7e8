#!/usr/bin/env bash
# make undeploy: stop the operator's Pods (Deployments, metrics Service, disruption
# budgets, settings). The CRDs stay, since deleting one deletes every object of
# its kind; the namespace, ServiceAccounts and roles stay too, for a local
# process (or the integration tests) running as them.
set -euo pipefail
kubectl delete -n infometis-system --ignore-not-found --wait \
  deployment,service,poddisruptionbudget,configmap -l app.kubernetes.io/name=infometis-operator
