"""One module per format family; each defines Format subclasses (see ``pipeline.unpack.format``)."""
