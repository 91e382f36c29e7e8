#!/usr/bin/env bash
# `make run` after the stack is up: install the CRDs, run the operator in the
# foreground, apply samples/, and show them once Ready. Ctrl-C stops the
# operator; the stack keeps running until `hack/stack down`.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[run] %s\n' "$*" >&2; }

say "installing the CRDs"
kubectl apply -k crds >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null

say "starting the operator (python -m controllers; Ctrl-C stops it)"
# Its own session, so Ctrl-C reaches it once (from the trap), not twice.
setsid .venv/bin/python -m controllers &
operator=$!
trap 'kill -TERM $operator 2>/dev/null; wait $operator 2>/dev/null' INT TERM EXIT

say "applying samples/ to namespace default"
kubectl apply -n default -k samples
if kubectl wait -n default --for=condition=Ready kafkatopics,elasticsearchindices --all --timeout=120s >/dev/null; then
  printf '\n'
  kubectl get kafkatopics,elasticsearchindices -n default
  printf '\n'
  say "the topics and indices are Ready. In another shell: eval \"\$(hack/stack env)\"; kubectl get infometis -A"
else
  say "not Ready within 120s; what the operator says:"
  kubectl describe kafkatopics,elasticsearchindices -n default
fi
wait $operator
