"""Atheris harness for the U-Boot legacy uImage reader: header, single and multi images."""

from fuzz.harness import main

if __name__ == "__main__":
    main("uimage")
