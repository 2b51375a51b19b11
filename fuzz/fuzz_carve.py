"""Atheris harness for the carver: every format's chunk_length at every magic found in a raw blob."""

from fuzz.harness import main

if __name__ == "__main__":
    main("carve")
