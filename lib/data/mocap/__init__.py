"""Real motion-capture import: CMU ASF/AMC parsing and FK (asf_amc), mapping to H36M (to_h36m)."""
