"""Dagster assets: the log and the land turned into monthly states, bulletins, matches and maps."""
