"""What every layer's Dagster definitions share: partitions and run tags, conventions, metadata."""
