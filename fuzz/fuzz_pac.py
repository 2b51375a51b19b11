"""Atheris harness for the Spreadtrum PAC reader: header, file table, entries (BP_R1 and BP_R2)."""

from fuzz.harness import main

if __name__ == "__main__":
    main("pac")
