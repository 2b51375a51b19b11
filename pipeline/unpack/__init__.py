"""Recursive, bounded, safe extraction of firmware images into an extraction tree."""

from pipeline.unpack.walker import unpack

__all__ = ["unpack"]
