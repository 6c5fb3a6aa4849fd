"""Command groups of the `edaml` CLI, one module per area; each has `register(app)`."""
