"""One module per family of samples; each exposes ``build(ctx) -> list[Sample]``."""
