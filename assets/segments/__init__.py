"""Segments layer: the clustering model, customer_segments and the segment catalogue."""
