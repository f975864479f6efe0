"""Dagster assets and checks, one package per layer (ingest, core, features, segments, audiences,
publish, privacy), beside the shared storage (`assets.storage`) and conventions (`assets.common`).
Thin: load, call a pure function from `models/`, validate, write, report."""
