"""Shared storage: the zones and DuckDB files, the landing zone, stored ingestion, metering Parquet,
the marketing mart, suppressions and pruning logs. Every layer that writes or reads data does it here."""
