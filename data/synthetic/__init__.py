"""Synthetic Human3.6M: parametric SMPL motion for the 15 actions and CPN-like 2D noise.

The generator that writes the dataset to disk is :mod:`data.synthesize`; this package holds
the parts that have no file I/O (motion synthesis, placement, detector noise).
"""
