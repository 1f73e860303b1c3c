"""SMPL-format body models: loading through smplpytorch, and a fast batched forward pass.

Loading goes through ``smplpytorch``'s ``SMPL_Layer`` (which needs ``chumpy`` for the official
pickles; the ``chumpy-fixed`` distribution provides it on Python 3.11 / numpy 2), so a file that
loads here loads in smplpytorch unchanged. The forward pass is our own: the same linear blend
skinning, vectorised over frames and chunked, without autograd — the dataset cache runs it once
over every frame.
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import torch

from lib.errors import MissingFileError, PoseError

MODEL_FILES = {"neutral": "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl",
               "female": "basicModel_f_lbs_10_207_0_v1.0.0.pkl",
               "male": "basicModel_m_lbs_10_207_0_v1.0.0.pkl"}
REQUIRED_KEYS = ("v_template", "f", "J_regressor", "kintree_table", "weights", "posedirs",
                 "shapedirs")
HOW_TO_DOWNLOAD = ("Download the SMPL model files (basicModel_{f,m,neutral}_lbs_10_207_0_v1.0.0"
                   ".pkl) from the SMPL website (see the README, 'Real data and body model') "
                   "into smplpytorch/smplpytorch/native/models/ (or the config's smpl_dir).")
HOW_TO_GET = (HOW_TO_DOWNLOAD + " Without them, generate the synthetic SMPL-format model with "
              "`python data/synthesize.py` (it writes data/Synthetic/smpl/).")


class BodyModelError(PoseError, ValueError):
    pass


def rodrigues(axis_angle: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrices (exact near zero angle)."""
    angle = axis_angle.norm(dim=-1, keepdim=True)
    small = angle < 1e-8
    safe = torch.where(small, torch.ones_like(angle), angle)
    axis = axis_angle / safe
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    K = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*x.shape, 3, 3)
    s = torch.sin(angle)[..., None]
    c = torch.cos(angle)[..., None]
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    R = eye + s * K + (1 - c) * (K @ K)
    return torch.where(small[..., None], eye.expand_as(R), R)


class BodyModel:
    """The tensors of an SMPL-format model and a batched, gradient-free forward pass."""

    def __init__(self, v_template, faces, J_regressor, parents, weights, posedirs, shapedirs,
                 source=""):
        self.v_template = torch.as_tensor(v_template, dtype=torch.float32)      # (V, 3)
        self.faces = np.asarray(faces, dtype=np.int64)                          # (F, 3)
        self.J_regressor = torch.as_tensor(J_regressor, dtype=torch.float32)    # (24, V)
        self.parents = np.asarray(parents, dtype=np.int64)                      # (24,)
        self.weights = torch.as_tensor(weights, dtype=torch.float32)            # (V, 24)
        self.posedirs = torch.as_tensor(posedirs, dtype=torch.float32)          # (V, 3, 207)
        self.shapedirs = torch.as_tensor(shapedirs, dtype=torch.float32)        # (V, 3, B)
        self.source = str(source)
        V = self.v_template.shape[0]
        K = len(self.parents)
        checks = {"J_regressor": (self.J_regressor.shape, (K, V)),
                  "weights": (self.weights.shape, (V, K)),
                  "posedirs": (self.posedirs.shape, (V, 3, 9 * (K - 1))),
                  "shapedirs": (tuple(self.shapedirs.shape[:2]), (V, 3))}
        for key, (got, want) in checks.items():
            if tuple(got) != want:
                raise BodyModelError(f"{self.source}: key '{key}' has shape {tuple(got)}, "
                                     f"expected {want}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or self.faces.max() >= V:
            raise BodyModelError(f"{self.source}: key 'f' must be (F, 3) vertex indices < {V}")
        self.parents[0] = -1          # the pickles store the root's parent as 2**32 - 1
        if any(self.parents[k] >= k for k in range(1, K)):
            raise BodyModelError(f"{self.source}: key 'kintree_table' is not in topological order")
        self._fingerprint = None

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_dir(cls, model_dir, gender: str = "neutral") -> "BodyModel":
        """Load ``basicModel_<gender>..._v1.0.0.pkl`` from ``model_dir`` via smplpytorch."""
        if gender not in MODEL_FILES:
            raise BodyModelError(f"gender must be one of {sorted(MODEL_FILES)}, got '{gender}'")
        path = Path(model_dir) / MODEL_FILES[gender]
        if not path.is_file():
            raise MissingFileError(f"SMPL model file '{path}' not found. {HOW_TO_GET}")
        from smplpytorch.pytorch.smpl_layer import SMPL_Layer
        try:
            with warnings.catch_warnings():   # smplpytorch wraps read-only chumpy arrays
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                # the official pickles (and ours, for numpy 1.x) name scipy.sparse.csc
                warnings.filterwarnings("ignore", message=".*scipy.sparse.csc",
                                        category=DeprecationWarning)
                layer = SMPL_Layer(center_idx=None, gender=gender, model_root=str(model_dir))
        except KeyError as exc:
            raise BodyModelError(f"{path}: key {exc} missing from the SMPL model pickle") from None
        except Exception as exc:  # chumpy/pickle problems surface with many types
            raise BodyModelError(f"{path}: cannot be read as an SMPL model pickle "
                                 f"({type(exc).__name__}: {exc})") from None
        return cls.from_layer(layer, source=path)

    @classmethod
    def from_file(cls, path) -> "BodyModel":
        """Load any SMPL-format pickle (official or synthetic) with smplpytorch's reader."""
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"SMPL model file '{path}' not found. {HOW_TO_GET}")
        for gender, name in MODEL_FILES.items():
            if path.name == name:
                return cls.from_dir(path.parent, gender)
        from smplpytorch.native.webuser.serialization import ready_arguments
        try:
            dd = ready_arguments(str(path))
        except KeyError as exc:
            raise BodyModelError(f"{path}: key {exc} missing from the SMPL model pickle") from None
        missing = [k for k in REQUIRED_KEYS if k not in dd]
        if missing:
            raise BodyModelError(f"{path}: key '{missing[0]}' missing from the SMPL model pickle")
        r = lambda a: np.asarray(getattr(a, "r", a))  # noqa: E731  (chumpy -> numpy)
        jr = dd["J_regressor"]
        return cls(r(dd["v_template"]), np.asarray(dd["f"]),
                   jr.toarray() if hasattr(jr, "toarray") else r(jr),
                   np.asarray(dd["kintree_table"])[0].astype(np.int64), r(dd["weights"]),
                   r(dd["posedirs"]), r(dd["shapedirs"]), source=path)

    @classmethod
    def from_layer(cls, layer, source="") -> "BodyModel":
        return cls(layer.th_v_template[0], layer.th_faces.numpy(), layer.th_J_regressor,
                   np.asarray(layer.kintree_parents, dtype=np.int64), layer.th_weights,
                   layer.th_posedirs, layer.th_shapedirs, source=source)

    # ------------------------------------------------------------------ properties
    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def num_joints(self) -> int:
        return len(self.parents)

    @property
    def num_betas(self) -> int:
        return int(self.shapedirs.shape[-1])

    @property
    def fingerprint(self) -> str:
        """sha1 of the model's arrays: changes whenever the mesh or any blend shape does."""
        if self._fingerprint is None:
            h = hashlib.sha1()
            for arr in (self.v_template, self.J_regressor, self.weights, self.shapedirs,
                        self.posedirs):
                h.update(arr.contiguous().numpy().tobytes())
            h.update(self.faces.tobytes())
            h.update(self.parents.tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    # ------------------------------------------------------------------ forward
    @torch.no_grad()
    def forward(self, pose, shape=None, trans=None, chunk: int = 256):
        """Vertices (N, V, 3) and joints (N, 24, 3) in metres, as smplpytorch's SMPL_Layer."""
        pose = torch.as_tensor(pose, dtype=torch.float32).reshape(-1, self.num_joints * 3)
        n = pose.shape[0]
        shape = (torch.zeros(n, self.num_betas) if shape is None
                 else torch.as_tensor(shape, dtype=torch.float32).reshape(n, -1))
        if shape.shape[1] != self.num_betas:
            raise ValueError(f"shape must have {self.num_betas} coefficients, got {shape.shape[1]}")
        verts, joints = [], []
        for s in range(0, n, chunk):
            v, j = self._forward_chunk(pose[s:s + chunk], shape[s:s + chunk])
            verts.append(v)
            joints.append(j)
        verts = torch.cat(verts) if verts else torch.zeros(0, self.num_vertices, 3)
        joints = torch.cat(joints) if joints else torch.zeros(0, self.num_joints, 3)
        if trans is not None:
            t = torch.as_tensor(trans, dtype=torch.float32).reshape(n, 1, 3)
            verts = verts + t
            joints = joints + t
        return verts, joints

    __call__ = forward

    def _forward_chunk(self, pose, shape):
        n, K = pose.shape[0], self.num_joints
        v_shaped = self.v_template + torch.einsum("vck,nk->nvc", self.shapedirs, shape)
        J = torch.einsum("jv,nvc->njc", self.J_regressor, v_shaped)               # (n, K, 3)
        R = rodrigues(pose.view(n, K, 3))                                          # (n, K, 3, 3)
        eye = torch.eye(3)
        pose_map = (R[:, 1:] - eye).reshape(n, -1)                                 # (n, 207)
        v_posed = v_shaped + torch.einsum("vcp,np->nvc", self.posedirs, pose_map)
        # world transforms of every joint along the kinematic chain
        rel = J.clone()
        rel[:, 1:] = J[:, 1:] - J[:, self.parents[1:]]
        G_R = [R[:, 0]]
        G_t = [rel[:, 0]]
        for k in range(1, K):
            p = self.parents[k]
            G_R.append(G_R[p] @ R[:, k])
            G_t.append(G_t[p] + (G_R[p] @ rel[:, k, :, None])[..., 0])
        G_R = torch.stack(G_R, 1)                                                  # (n, K, 3, 3)
        G_t = torch.stack(G_t, 1)                                                  # (n, K, 3)
        # skinning transforms: rotate about each joint's rest position
        A_t = G_t - (G_R @ J[..., None])[..., 0]
        A = torch.cat([G_R, A_t[..., None]], -1).reshape(n, K, 12)                 # (n, K, 12)
        T = torch.einsum("vk,nkm->nvm", self.weights, A).reshape(n, -1, 3, 4)      # (n, V, 3, 4)
        verts = (T[..., :3] @ v_posed[..., None])[..., 0] + T[..., 3]
        return verts, G_t

    @torch.no_grad()
    def camera_frame_mesh(self, pose, shape, trans, R, t_mm, clamp_shape: float = 3.0):
        """HGN's ground-truth mesh in a camera frame (mm), exactly as its dataset builds it.

        Shapes with any |beta| > clamp_shape are zeroed; the root orientation is rotated into
        the camera (R_root <- R_cam R_root); SMPL runs without translation; then
        T = R_cam trans + t_cam/1000 - J_root + R_cam J_root is added (SMPL rotates about its
        root joint, not the origin) and metres become millimetres.
        """
        pose = torch.as_tensor(pose, dtype=torch.float32).reshape(-1, self.num_joints * 3).clone()
        shape = torch.as_tensor(shape, dtype=torch.float32).clone()
        shape[shape.abs().amax(1) > clamp_shape] = 0.0
        trans = torch.as_tensor(trans, dtype=torch.float32).reshape(-1, 3)
        Rc = torch.as_tensor(np.asarray(R), dtype=torch.float32)
        tc = torch.as_tensor(np.asarray(t_mm), dtype=torch.float32).reshape(3) / 1000.0
        root = rodrigues(pose[:, :3])
        pose[:, :3] = matrix_to_axis_angle(Rc @ root)
        verts, joints = self.forward(pose, shape, None)
        j_root = joints[:, :1]
        T = (trans @ Rc.T + tc)[:, None] - j_root + j_root @ Rc.T
        return (verts + T) * 1000.0, (joints + T) * 1000.0


def matrix_to_axis_angle(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotations -> (..., 3) axis-angle, via a quaternion (stable at 0 and pi)."""
    Rd = R.double()
    m = Rd.reshape(-1, 3, 3)
    tr = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    # Shepperd: build the quaternion from its largest component
    cand = torch.stack([tr, m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], -1)
    best = cand.argmax(-1)
    q = torch.empty(m.shape[0], 4, dtype=Rd.dtype)
    for case in range(4):
        sel = best == case
        if not bool(sel.any()):
            continue
        a = m[sel]
        if case == 0:
            r = torch.sqrt(1 + tr[sel]) * 2
            q[sel] = torch.stack([r / 4, (a[:, 2, 1] - a[:, 1, 2]) / r,
                                  (a[:, 0, 2] - a[:, 2, 0]) / r, (a[:, 1, 0] - a[:, 0, 1]) / r], -1)
        else:
            i = case - 1
            j, k = (i + 1) % 3, (i + 2) % 3
            r = torch.sqrt((1 + a[:, i, i] - a[:, j, j] - a[:, k, k]).clamp(min=1e-24)) * 2
            comp = [None, None, None]
            comp[i] = r / 4
            comp[j] = (a[:, j, i] + a[:, i, j]) / r
            comp[k] = (a[:, k, i] + a[:, i, k]) / r
            w = (a[:, k, j] - a[:, j, k]) / r
            q[sel] = torch.stack([w] + comp, -1)
    q = torch.where(q[:, :1] < 0, -q, q)                     # angle in [0, pi]
    v = q[:, 1:]
    vn = v.norm(dim=-1, keepdim=True)
    angle = 2 * torch.atan2(vn, q[:, :1])
    scale = torch.where(vn > 1e-12, angle / vn.clamp(min=1e-12), torch.full_like(vn, 2.0))
    return (v * scale).reshape(*R.shape[:-2], 3).to(R.dtype)


def regress_joints(vertices, J_regressor) -> torch.Tensor:
    """(N, V, 3) vertices, (K, V) regressor -> (N, K, 3) joints."""
    reg = torch.as_tensor(np.asarray(J_regressor), dtype=torch.float32) \
        if not isinstance(J_regressor, torch.Tensor) else J_regressor.float()
    return torch.einsum("kv,nvc->nkc", reg, torch.as_tensor(vertices, dtype=torch.float32))
