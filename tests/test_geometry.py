"""Cameras and skeletons against the published Human3.6M numbers, worked out by hand."""
import math

import numpy as np
import pytest
import torch

from lib.geometry import h36m_calibration as calib
from lib.geometry.camera import (Camera, h36m_camera, h36m_cameras, image_coordinates,
                                 normalize_screen_coordinates, project_to_pixels, qinverse,
                                 qrot, quaternion_to_matrix)
from lib.geometry.skeleton import (H36M16, H36M17, H36M32, KEEP_17_TO_16, KEEP_32_TO_16,
                                   KEEP_32_TO_17, convert_joints, reduce_parents)

# S1, camera 1 (id 54138969): the public calibration as hard-coded in VideoPose3D/SemGCN.
S1_CAM1_Q = (0.1407056450843811, -0.1500701755285263, -0.755240797996521, 0.6223280429840088)
S1_CAM1_CENTRE = (1841.1070556640625, 4955.28466796875, 1563.4454345703125)
CAM1_F = (1145.0494384765625, 1143.7811279296875)
CAM1_C = (512.54150390625, 515.4514770507812)
CAM1_K = (-0.20709891617298126, 0.24777518212795258, -0.0030751503072679043)
CAM1_P = (-0.0009756988729350269, -0.00142447161488235)


def _cross(a, b):
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def hand_world_to_camera(X):
    """VideoPose3D's world_to_camera written out: rotate (X - centre) by the inverse quaternion."""
    w, ux, uy, uz = S1_CAM1_Q
    n = math.sqrt(w * w + ux * ux + uy * uy + uz * uz)
    w, u = w / n, (-ux / n, -uy / n, -uz / n)          # inverse of a unit quaternion
    v = tuple(X[i] - S1_CAM1_CENTRE[i] for i in range(3))
    uv = _cross(u, v)
    uuv = _cross(u, uv)
    return tuple(v[i] + 2 * (w * uv[i] + uuv[i]) for i in range(3))


def hand_pixel(Xc, distort):
    x, y = Xc[0] / Xc[2], Xc[1] / Xc[2]
    if distort:
        k1, k2, k3 = CAM1_K
        p1, p2 = CAM1_P
        r2 = x * x + y * y
        radial = 1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
        tangential = p1 * x + p2 * y
        x, y = x * (radial + tangential) + p1 * r2, y * (radial + tangential) + p2 * r2
    return (CAM1_F[0] * x + CAM1_C[0], CAM1_F[1] * y + CAM1_C[1])


KNOWN_POINT = (250.0, -400.0, 1200.0)   # a world point in mm, roughly a chest of a subject


def test_s1_cam1_translation_sanity_value():
    cam = h36m_camera(1, 1)
    np.testing.assert_allclose(cam.t, [-346.05, 546.98, 5474.48], atol=0.01)
    np.testing.assert_allclose(cam.center_world, S1_CAM1_CENTRE, atol=1e-9)
    np.testing.assert_allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(cam.R) == pytest.approx(1.0)
    assert (cam.width, cam.height, cam.name) == (1000, 1002, "54138969")


@pytest.mark.parametrize("distort", [False, True])
def test_known_point_projects_to_hand_computed_pixel(distort):
    cam = h36m_camera(1, 1)
    Xc_hand = hand_world_to_camera(KNOWN_POINT)
    Xc = cam.world_to_camera(np.array(KNOWN_POINT))
    np.testing.assert_allclose(Xc, Xc_hand, atol=1e-9)
    assert Xc[2] > 4000                     # in front of the camera, ~5 m away
    uv = cam.project(Xc, distort=distort)
    np.testing.assert_allclose(uv, hand_pixel(Xc_hand, distort), atol=1e-9)


def test_known_point_pixel_literal():
    # Anchors the hand computation itself; worked once through an independent route
    # (scipy's Rotation.from_quat, scalar-last, X_cam = R_q^T (X - centre)):
    # X_cam = (-704.72, -690.98, 5510.78) mm, undistorted pixel = (366.11, 372.04).
    cam = h36m_camera(1, 1)
    Xc = cam.world_to_camera(np.array(KNOWN_POINT))
    np.testing.assert_allclose(Xc, [-704.72, -690.98, 5510.78], atol=0.01)
    np.testing.assert_allclose(cam.project(Xc, distort=False), [366.11, 372.04], atol=0.01)
    # Distortion moves a point ~0.18 rad off-axis by a fraction of a pixel to a few pixels.
    shift = np.linalg.norm(cam.project(Xc) - cam.project(Xc, distort=False))
    assert 0.05 < shift < 5


def test_distortion_formula_off_axis_point():
    # A point far off-axis (x/z = 0.3, y/z = -0.2) where every coefficient matters.
    Xc = np.array([600.0, -400.0, 2000.0])
    uv = project_to_pixels(Xc, CAM1_F, CAM1_C, CAM1_K, CAM1_P)
    np.testing.assert_allclose(uv, hand_pixel(tuple(Xc), True), atol=1e-9)
    x, y, r2 = 0.3, -0.2, 0.13
    radial = 1 + CAM1_K[0] * r2 + CAM1_K[1] * r2 ** 2 + CAM1_K[2] * r2 ** 3
    tan = CAM1_P[0] * x + CAM1_P[1] * y
    u = CAM1_F[0] * (x * (radial + tan) + CAM1_P[0] * r2) + CAM1_C[0]
    assert uv[0] == pytest.approx(u, abs=1e-9)


def test_quaternion_matrix_agrees_with_qrot():
    q = np.array(S1_CAM1_Q)
    v = np.array([[1.0, 2.0, 3.0], [-4.0, 0.5, 2.0]])
    np.testing.assert_allclose(qrot(np.broadcast_to(q, (2, 4)), v), v @ quaternion_to_matrix(q).T,
                               atol=1e-6)   # q is stored in float32 precision, not exactly unit
    back = qrot(np.broadcast_to(qinverse(q), (2, 4)), qrot(np.broadcast_to(q, (2, 4)), v))
    np.testing.assert_allclose(back, v, atol=1e-5)


@pytest.mark.parametrize("subject", [1, 5, 6, 7, 8, 9, 11])
def test_world_camera_round_trip(subject):
    X = np.random.default_rng(subject).normal(scale=1000, size=(10, 17, 3))
    for cam in h36m_cameras(subject).values():
        np.testing.assert_allclose(cam.camera_to_world(cam.world_to_camera(X)), X, atol=1e-8)
        # camera centre maps to the camera-frame origin
        np.testing.assert_allclose(cam.world_to_camera(cam.center_world), 0, atol=1e-8)


@pytest.mark.parametrize("subject", [1, 9, 11])
def test_four_cameras_see_the_capture_centre(subject):
    centre = np.array([0.0, 0.0, 900.0])
    for idx, cam in h36m_cameras(subject).items():
        Xc = cam.world_to_camera(centre)
        assert 3500 < Xc[2] < 7000, f"camera {idx}: depth {Xc[2]}"
        u, v = cam.project(Xc)
        assert 0.2 * cam.width < u < 0.8 * cam.width, f"camera {idx}: u = {u}"
        assert 0.2 * cam.height < v < 0.8 * cam.height, f"camera {idx}: v = {v}"


def test_cameras_look_down_onto_the_floor_from_above():
    # Cameras hang at ~1.5 m: the world up axis (+z) points to image-up (-v).
    for cam in h36m_cameras(1).values():
        assert 1400 < cam.center_world[2] < 1700
        assert (cam.R @ np.array([0, 0, 1.0]))[1] < -0.9


def test_normalize_screen_coordinates_values_and_round_trip():
    w, h = 1000, 1002
    px = np.array([[0.0, 0.0], [1000.0, 1002.0], [500.0, 501.0]])
    n = normalize_screen_coordinates(px, w, h)
    np.testing.assert_allclose(n, [[-1, -h / w], [1, h / w], [0, 0]], atol=1e-12)
    X = np.random.default_rng(0).uniform(0, 1000, size=(7, 16, 2))
    np.testing.assert_allclose(image_coordinates(normalize_screen_coordinates(X, w, h), w, h), X,
                               atol=1e-9)
    t = torch.tensor(X, dtype=torch.float64)
    np.testing.assert_allclose(normalize_screen_coordinates(t, w, h).numpy(),
                               normalize_screen_coordinates(X, w, h), atol=1e-12)


def test_torch_and_numpy_projection_agree():
    X = np.random.default_rng(1).normal(scale=500, size=(4, 17, 3)) + [0, 0, 900]
    for cam in h36m_cameras(9).values():
        Xc = cam.world_to_camera(X)
        Xt = cam.world_to_camera(torch.tensor(X))
        assert isinstance(Xt, torch.Tensor)
        np.testing.assert_allclose(Xt.numpy(), Xc, atol=1e-9)
        for distort in (False, True):
            np.testing.assert_allclose(cam.project(Xt, distort).numpy(), cam.project(Xc, distort),
                                       atol=1e-9)
        np.testing.assert_allclose(cam.camera_to_world(Xt).numpy(), X, atol=1e-8)


def test_unknown_camera_gives_clear_error():
    with pytest.raises(ValueError, match="S2"):
        h36m_camera(2, 1)
    with pytest.raises(ValueError, match="1..4"):
        h36m_camera(1, 5)


# ----------------------------------------------------------------------------- skeletons
PARENTS17 = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
PARENTS16 = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 8, 10, 11, 8, 13, 14)


def test_skeleton_parents_as_published():
    assert H36M17.parents == PARENTS17
    assert H36M16.parents == PARENTS16
    assert H36M32.parents == (-1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 13, 14, 12, 16, 17,
                              18, 19, 20, 19, 22, 12, 24, 25, 26, 27, 28, 27, 30)


def test_reduce_parents_reproduces_17_and_16():
    # Shoulders (32-idx 17, 25) re-attach to the thorax (32-idx 13).
    shoulders = {17: 13, 25: 13}
    assert reduce_parents(H36M32.parents, KEEP_32_TO_17, shoulders) == PARENTS17
    assert reduce_parents(H36M32.parents, KEEP_32_TO_16, shoulders) == PARENTS16
    # 17 -> 16: dropping the Nose re-attaches the Head to the Neck automatically.
    assert reduce_parents(PARENTS17, KEEP_17_TO_16) == PARENTS16
    # Without the re-attachment the shoulders would hang off the dropped anchors' parent.
    plain = reduce_parents(H36M32.parents, KEEP_32_TO_17)
    assert plain[11] == 7 and plain[14] == 7


def test_convert_joints_keeps_named_joints():
    X = np.arange(32 * 3, dtype=float).reshape(1, 32, 3)
    X17 = convert_joints(X, "h36m32", "h36m17")
    assert X17.shape == (1, 17, 3)
    np.testing.assert_array_equal(X17[0, :, 0] / 3, KEEP_32_TO_17)
    X16 = convert_joints(X17, "h36m17", "h36m16")
    np.testing.assert_array_equal(X16, convert_joints(X, "h36m32", "h36m16"))
    with pytest.raises(ValueError):
        convert_joints(X17, "h36m16", "h36m17")


@pytest.mark.parametrize("skel", [H36M32, H36M17, H36M16])
def test_flip_permutation_is_an_involution(skel):
    perm = skel.flip_permutation
    np.testing.assert_array_equal(perm[perm], np.arange(skel.num_joints))
    assert not np.array_equal(perm, np.arange(skel.num_joints))
    # a left joint maps to a right joint with the same parent structure
    for left, right in skel.flip_pairs:
        pl, pr = skel.parents[left], skel.parents[right]
        assert pl == pr or perm[pl] == pr


def test_calibration_tables_complete():
    assert len(calib.INTRINSICS) == 4
    for s in (1, 5, 6, 7, 8, 9, 11):
        assert len(calib.EXTRINSICS[s]) == 4
        for q, centre in calib.EXTRINSICS[s]:
            assert abs(np.linalg.norm(q) - 1) < 1e-6
            assert 3500 < np.linalg.norm(centre) < 6000
    assert isinstance(h36m_camera(1, 1), Camera)
