"""Privacy layer: retention (what is past its period is deleted) and erasure of a person everywhere."""
