"""Kubernetes operators that keep Kafka topics (and later Elasticsearch indices
and NiFi flows) in the state declared in Git."""
