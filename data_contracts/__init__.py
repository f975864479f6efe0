"""Contracts for every source and published table, identifier validators, and the marketing policy."""
