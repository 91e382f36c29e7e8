"""The ElasticsearchIndex kind: model, settings normalisation, pure planning, the search client edge,
and the kind class that joins them to the core loop."""
