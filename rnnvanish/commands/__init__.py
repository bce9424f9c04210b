"""Subcommands of the `rnnvanish` console script, one module each (see `rnnvanish.cli`)."""
