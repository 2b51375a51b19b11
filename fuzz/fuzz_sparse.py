"""Atheris harness for the Android sparse reader: header, RAW/FILL/DONT_CARE/CRC32 chunks, expansion."""

from fuzz.harness import main

if __name__ == "__main__":
    main("sparse")
