"""Audiences layer: the marketing policy applied, one audience per channel, exclusions and renewal offers,
with their blocking checks."""
