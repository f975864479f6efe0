"""The Dagster code location, configuration and the `lupa` command."""
