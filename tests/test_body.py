"""The synthetic SMPL-format model: loads in smplpytorch, closed human mesh, exact forward."""
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from lib.body.smpl import (BodyModel, BodyModelError, matrix_to_axis_angle, regress_joints,
                           rodrigues)
from lib.body.synthetic_model import (build_h36m_regressor, build_synthetic_body_model,
                                      write_synthetic_body_model)
from lib.geometry.camera import h36m_camera
from lib.geometry.skeleton import H36M17

SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("smpl")
    write_synthetic_body_model(d, seed=0)
    return d


@pytest.fixture(scope="module")
def raw():
    return build_synthetic_body_model(seed=0)


@pytest.fixture(scope="module")
def body(model_dir):
    return BodyModel.from_dir(model_dir)


def test_keys_and_shapes_are_smpl(raw):
    V = raw["v_template"].shape[0]
    assert raw["f"].shape[1] == 3
    assert raw["posedirs"].shape == (V, 3, 207) and raw["shapedirs"].shape == (V, 3, 10)
    assert raw["weights"].shape == (V, 24) and raw["J_regressor"].shape == (24, V)
    assert sp.issparse(raw["J_regressor"])
    parents = raw["kintree_table"][0].astype(np.int64)
    parents[0] = -1
    assert parents.tolist() == SMPL_PARENTS
    np.testing.assert_allclose(raw["weights"].sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(raw["J_regressor"].sum(1)).ravel(), 1.0, atol=1e-6)


def test_mesh_is_closed_manifold_genus0_outward(raw):
    f = raw["f"].astype(np.int64)
    V = raw["v_template"].shape[0]
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert (counts == 2).all()                              # every edge shared by two faces
    E = len(counts)
    assert V - E + len(f) == 2                              # Euler characteristic of a sphere
    assert len(np.unique(f)) == V                           # no stray vertices
    v = raw["v_template"]
    vol = np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6
    assert vol > 0.03                                       # outward, a body's volume (m^3)


def test_template_is_human_sized(raw):
    v = raw["v_template"]
    height = v[:, 1].max() - v[:, 1].min()                  # SMPL is y-up
    assert 1.5 < height < 1.95


def test_loads_in_smplpytorch_unchanged_and_forward_matches(model_dir, body):
    from smplpytorch.pytorch.smpl_layer import SMPL_Layer
    for gender in ("neutral", "female", "male"):
        layer = SMPL_Layer(gender=gender, model_root=str(model_dir))
        assert layer.th_v_template.shape[1] == body.num_vertices
    layer = SMPL_Layer(gender="neutral", model_root=str(model_dir))
    g = torch.Generator().manual_seed(0)
    pose = torch.randn(16, 72, generator=g) * 0.5
    shape = torch.randn(16, 10, generator=g)
    trans = torch.randn(16, 3, generator=g)
    v_ref, j_ref = layer(pose, shape, trans)
    v, j = body.forward(pose, shape, trans, chunk=5)        # chunking must not matter
    assert (v - v_ref).abs().max() < 1e-5 and (j - j_ref).abs().max() < 1e-5


def test_rest_pose_and_blend_shapes(body):
    v, _ = body.forward(torch.zeros(2, 72), torch.zeros(2, 10))
    assert torch.allclose(v, body.v_template.expand(2, -1, -1), atol=1e-6)
    # pose blend shapes vanish at zero pose: shape-only change equals the shape blend shapes
    beta = torch.zeros(1, 10)
    beta[0, 0] = 2.0
    vb, _ = body.forward(torch.zeros(1, 72), beta)
    expect = body.v_template + 2.0 * body.shapedirs[..., 0]
    assert torch.allclose(vb[0], expect, atol=1e-5)
    height = lambda x: (x[..., 1].max() - x[..., 1].min()).item()  # noqa: E731
    assert abs(height(vb[0]) - height(body.v_template)) > 0.01  # beta changes the body


def test_camera_frame_mesh_equals_world_then_camera(body):
    g = torch.Generator().manual_seed(1)
    pose = torch.randn(6, 72, generator=g) * 0.3
    shape = torch.randn(6, 10, generator=g)
    shape[0, 2] = 3.5                                       # clamped: all betas of sample 0 -> 0
    trans = torch.randn(6, 3, generator=g)
    cam = h36m_camera(1, 1)
    vc, jc = body.camera_frame_mesh(pose, shape, trans, cam.R, cam.t)
    clamped = shape.clone()
    clamped[shape.abs().amax(1) > 3.0] = 0
    assert (clamped[0] == 0).all() and (clamped[1:] != 0).any()
    vw, _ = body.forward(pose, clamped, trans)
    expect = cam.world_to_camera(vw.double().numpy() * 1000.0)
    assert np.abs(vc.numpy() - expect).max() < 5e-3        # mm, float32 arithmetic


def test_fingerprint_stable_and_sensitive(model_dir, body):
    again = BodyModel.from_dir(model_dir)
    assert again.fingerprint == body.fingerprint
    again.v_template[0, 0] += 1e-4
    again._fingerprint = None
    assert again.fingerprint != body.fingerprint


def test_h36m_regressor_is_anatomical(raw, body):
    reg = build_h36m_regressor(raw)
    assert reg.shape == (17, body.num_vertices) and (reg >= 0).all()
    np.testing.assert_allclose(reg.sum(1), 1.0, atol=1e-9)
    nnz = (reg > 0).sum(1)
    assert ((nnz >= 4) & (nnz <= 9)).all()
    j = regress_joints(body.v_template[None], reg)[0].numpy()
    y = j[:, 1]
    name = H36M17.index
    assert y[name("Head")] > y[name("Neck")] > y[name("Torso")] > y[name("Pelvis")]
    assert y[name("Pelvis")] > y[name("R_Knee")] > y[name("R_Ankle")]
    # SMPL faces +z with y up, so the subject's right is -x
    for left, right in H36M17.flip_pairs:
        assert j[right, 0] < j[left, 0]


def test_rotation_helpers_round_trip():
    g = torch.Generator().manual_seed(2)
    aa = torch.randn(500, 3, generator=g, dtype=torch.float64) * 1.5
    R = rodrigues(aa)
    assert torch.allclose(R @ R.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand_as(R),
                          atol=1e-12)
    assert torch.allclose(rodrigues(matrix_to_axis_angle(R)), R, atol=1e-10)
    # a rotation by pi about z: R = diag(-1, -1, 1)
    half = matrix_to_axis_angle(torch.diag(torch.tensor([-1.0, -1.0, 1.0], dtype=torch.float64)))
    assert torch.allclose(half.abs(), torch.tensor([0, 0, np.pi], dtype=torch.float64))


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="synthesize.py"):
        BodyModel.from_dir(tmp_path)
    bad = tmp_path / "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"
    bad.write_bytes(b"\x80\x02}q\x00.")                     # an empty pickled dict
    with pytest.raises(BodyModelError, match="kintree_table|key"):
        BodyModel.from_dir(tmp_path)


# Globals that numpy 1.24 / SciPy < 1.8 (the originals' environments) can resolve, and that the
# official SMPL pickles use; numpy 2 pickles arrays through 'numpy._core', SciPy >= 1.8 names
# 'scipy.sparse._csc', neither of which those versions have.
NUMPY_124_GLOBALS = {"numpy.core.multiarray._reconstruct", "numpy.core.multiarray.scalar",
                     "numpy.ndarray", "numpy.dtype", "scipy.sparse.csc.csc_matrix",
                     "chumpy.ch.Ch", "_codecs.encode", "__builtin__.set", "copy_reg._reconstructor",
                     "__builtin__.object"}


@pytest.mark.filterwarnings("ignore:.*scipy.sparse.csc:DeprecationWarning")
def test_body_model_pickle_names_only_numpy_124_globals(model_dir, raw):
    import pickle
    from lib.body.portable_pickle import dumps, pickled_globals
    from lib.body.synthetic_model import MODEL_FILES
    for name in MODEL_FILES.values():
        data = (model_dir / name).read_bytes()
        found = pickled_globals(data)
        assert found <= NUMPY_124_GLOBALS, found - NUMPY_124_GLOBALS
        assert not any(g.startswith(("numpy._core", "scipy.sparse._")) for g in found)
        assert {"numpy.core.multiarray._reconstruct", "scipy.sparse.csc.csc_matrix"} <= found
        loaded = pickle.loads(data, encoding="latin1")
        assert sp.issparse(loaded["J_regressor"]) and loaded["J_regressor"].format == "csc"
    # the plain pickler would have named the new modules (this is what the fix is about)
    plain = pickled_globals(pickle.dumps({"a": raw["v_template"], "r": raw["J_regressor"]}, 2))
    assert "numpy._core.multiarray._reconstruct" in plain
    assert "scipy.sparse._csc.csc_matrix" in plain
    portable = pickle.loads(dumps({"a": raw["v_template"], "r": raw["J_regressor"]}))
    np.testing.assert_array_equal(portable["a"], raw["v_template"])
    assert (portable["r"] != raw["J_regressor"]).nnz == 0
