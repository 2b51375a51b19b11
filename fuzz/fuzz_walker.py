"""Atheris harness for the walker on a whole image: identification, extraction, carving, recursion, quotas."""

from fuzz.harness import main

if __name__ == "__main__":
    main("walker")
