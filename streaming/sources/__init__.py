"""edaml."""
