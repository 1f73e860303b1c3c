"""Synthetic Human3.6M: parametric SMPL motion for the 15 actions and CPN-like 2D noise.

:mod:`lib.data.synthetic.generate` writes the dataset to disk (``python data/synthesize.py`` is
its command line); the other modules have no file I/O (motion synthesis, detector noise).
"""
