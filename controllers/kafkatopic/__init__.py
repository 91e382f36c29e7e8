"""The KafkaTopic kind: model, pure planning, the Kafka Admin edge, and the
reconciler that joins them to the core loop."""
