"""Analyzers: a file in, findings out. One module per analyzer, found by ``registry``."""
