"""Readers and writers of the on-disk dataset formats (one module per format)."""
