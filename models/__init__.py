"""Pure segmentation logic on polars frames. No Dagster imports."""
