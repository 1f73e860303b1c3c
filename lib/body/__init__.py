"""Body model layer: SMPL-format loading and skinning (smpl.py), the synthetic stand-in model
(synthetic_model.py) and its box-modelled mesh (mesh_build.py)."""
