"""The hostile corpus: inputs built at test time to escape, hang or blind the unpacker, the analyzers and the report."""
