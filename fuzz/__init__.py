"""Fuzzing of fwtriage's own parsers: targets and seeds shared by the hypothesis tests and the atheris harnesses."""
