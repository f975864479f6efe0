"""Ingest layer: every landing-zone source read once, validated against its contract, split into valid
and quarantined rows."""
