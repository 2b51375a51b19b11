"""Atheris harness for the Android boot image reader: boot v0-v4 and vendor boot v3/v4 layouts, ramdisk fragments."""

from fuzz.harness import main

if __name__ == "__main__":
    main("boot")
