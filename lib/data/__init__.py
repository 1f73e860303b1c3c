"""Data layer: pose corpora, the dataset-format readers, lifting datasets and their cache.

The top-level ``data/`` folder holds the command-line tools and the data files themselves;
everything importable lives here so that ``lib/`` never imports ``data/``.
"""
