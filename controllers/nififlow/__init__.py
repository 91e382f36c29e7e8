"""The NiFiFlow kind: model, flow-definition comparison by content, pure planning, the NiFi client edge,
and the kind class that joins them to the core loop."""
