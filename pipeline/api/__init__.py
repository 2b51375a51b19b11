"""The HTTP service: the JSON API, its authentication, uploads and the dispatch of triage."""
