#!/usr/bin/env bash
# `make run` after the stack is up: install the CRDs, run the operator in the
# foreground, apply samples/, show them once Ready, and send a few events
# through the sample pipeline (Kafka -> NiFi -> Elasticsearch). Ctrl-C stops the
# operator; the stack keeps running until `hack/stack down`.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[run] %s\n' "$*" >&2; }

say "installing the CRDs"
kubectl apply -k crds >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null

say "starting the operator (python -m controllers; Ctrl-C stops it)"
# Its own session, so Ctrl-C reaches it once (from the trap), not twice.
setsid .venv/bin/python -m controllers --tenancy-policy hack/run-tenancy-policy.yaml &
operator=$!
trap 'kill -TERM $operator 2>/dev/null; wait $operator 2>/dev/null' INT TERM EXIT

say "applying samples/ to namespace default"
kubectl apply -n default -k samples
kinds=kafkatopics,elasticsearchindices,nififlows
if kubectl wait -n default --for=condition=Ready "$kinds" --all --timeout=180s >/dev/null; then
  printf '\n'
  kubectl get "$kinds" -n default
  printf '\n'
  say "the topics, indices and flow are Ready; sending events through the flow"
  if .venv/bin/python hack/demo_pipeline.py; then
    say "these reached user-profiles from user-events through NiFi."
  fi
  say "In another shell: eval \"\$(hack/stack env)\"; kubectl get infometis -A"
else
  say "not Ready within 180s; what the operator says:"
  kubectl describe "$kinds" -n default
fi
wait $operator
