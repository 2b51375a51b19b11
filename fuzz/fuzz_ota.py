"""Atheris harness for the block OTA rebuilder: transfer list and its new data, raw or brotli."""

from fuzz.harness import main

if __name__ == "__main__":
    main("ota")
