"""Publish layer: the marketing mart, validated again and swapped into place atomically."""
