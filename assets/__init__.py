"""Dagster assets and checks, one module per layer. Thin: load, call, validate, write, report."""
