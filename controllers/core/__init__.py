"""The kind-agnostic core: the reconcile loop, conditions, status, Events,
connections and the thin Kubernetes edge. Nothing here knows about Kafka."""
