"""Fuzzing of the parsers: hypothesis properties and the regressions the fuzzers found."""
