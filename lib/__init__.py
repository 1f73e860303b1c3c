"""Graph-network 3D human pose lifting: HGN, GraphSH and baselines on Human3.6M."""
__version__ = "0.1.0"
