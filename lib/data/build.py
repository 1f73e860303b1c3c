"""Config -> train / val / test LiftingDatasets (reading, splitting, caching).

Splits: ``train`` = training subjects minus held-out sequences, ``val`` = those held-out
sequences (model selection, DATASET.val_fraction of the training sequences, picked
deterministically), ``test`` = test subjects (without the sequences the format's DatasetInfo
lists as excluded, e.g. Human3.6M's corrupted S9 ones, when DATASET.exclude_corrupted).
"""
from __future__ import annotations

import logging
from pathlib import Path

from lib.config import ConfigError
from lib.data.formats import get_format
from lib.data.lifting import (LiftingDataset, LiftingSpec, MeshTargets, build_arrays,
                              cached_arrays)
from lib.errors import MissingFileError

log = logging.getLogger("pose")

SPLITS = ("train", "val", "test")


# Generator parameters carried over when an outdated synthetic set is regenerated, so that a
# 'large' or subject-restricted set stays what its user asked for.
REGENERATE_KEYS = ("seed", "frames_per_sequence", "subjects", "actions", "subactions",
                   "invalid_fit_rate", "longer_2d_rate", "margin_px")


def ensure_synthetic(cfg):
    """Generate the synthetic default under DATASET.root if it is asked for and absent.

    A set written by an older generator version is regenerated (it is derived data, and the
    numbers of a run should not depend on when the folder was first written).
    """
    if not cfg.DATASET.synthetic:
        return
    from lib.data.synthetic.generate import VERSION, generate_synthetic_h36m, is_complete, read_manifest
    root = Path(cfg.DATASET.root)
    manifest = read_manifest(root)
    old = (manifest or {}).get("parameters", {}).get("version")
    if manifest and old != VERSION:
        log.warning("synthetic Human3.6M under %s was written by generator version %s; this "
                    "code writes version %s: regenerating it", root, old, VERSION)
        keep = {k: manifest["parameters"][k] for k in REGENERATE_KEYS
                if k in manifest["parameters"]}
        generate_synthetic_h36m(out_dir=root, force=True, **keep)
        return
    frames = int(cfg.DATASET.synthetic_frames) or None
    if is_complete(root, manifest):
        have = manifest["parameters"]["frames_per_sequence"]
        if frames is not None and have != frames:
            raise ConfigError(
                f"{root} holds a synthetic set with {have} frames per sequence but "
                f"DATASET.synthetic_frames is {frames}; point DATASET.root at another folder, "
                f"delete {root}, or set DATASET.synthetic_frames to {have} (0: use what is there)")
        return
    log.info("synthetic Human3.6M not found under %s: generating it (one-off)", root)
    generate_synthetic_h36m(out_dir=root, frames_per_sequence=frames)


def validation_keys(corpus, fraction: float) -> set:
    """Every k-th training sequence (sorted by key), k = round(1/fraction)."""
    if fraction <= 0:
        return set()
    keys = sorted(s.key for s in corpus.sequences)
    step = max(2, int(round(1.0 / fraction)))
    return set(keys[step // 2::step])


def _distort(cfg, info) -> bool:
    if cfg.DATASET.distort_projection is not None:
        return bool(cfg.DATASET.distort_projection)
    return info.distort_by_default


def build_datasets(cfg, splits=SPLITS, mesh: MeshTargets | None = None) -> dict:
    """LiftingDatasets for the requested splits; mesh targets when ``mesh`` is given."""
    ensure_synthetic(cfg)
    d = cfg.DATASET
    fmt = get_format(d.format)
    info = fmt.info(cfg)
    out = {}
    want_train = bool({"train", "val"} & set(splits))
    corpora = {}
    if want_train:
        corpora["train"] = fmt.read(cfg, list(d.train_subjects))
    if "test" in splits:
        corpora["test"] = fmt.read(cfg, list(d.test_subjects))
    val_keys = validation_keys(corpora["train"], d.val_fraction) if want_train else set()
    if "val" in splits and not val_keys:
        splits = [s for s in splits if s != "val"]
    mesh_extra = {"mesh": mesh.fingerprint if mesh is not None else None,
                  "keypoints": d.keypoints, "format": d.format}
    for split in splits:
        if split == "train":
            corpus, stride = corpora["train"], d.train_stride
            exclude = tuple(val_keys)
        elif split == "val":
            base = corpora["train"]
            corpus = base.select(exclude=[s.key for s in base.sequences if s.key not in val_keys])
            stride, exclude = d.test_stride, ()
        else:
            corpus, stride = corpora["test"], d.test_stride
            exclude = tuple(info.excluded_sequences) if d.exclude_corrupted else ()
        spec = LiftingSpec(num_joints=d.num_joints, stride=stride, distort=_distort(cfg, info),
                           require_smpl=d.require_smpl,
                           exclude=exclude, with_mesh=mesh is not None)
        subjects = sorted({s.subject for s in corpus.sequences})
        sources = fmt.source_files(cfg, subjects)
        # the npz files hold every subject: the subject list must be part of the key
        extra = dict(mesh_extra, subjects=subjects,
                     val_keys=sorted(val_keys) if split == "val" else None)
        arrays = cached_arrays(cfg.cache_dir, split, sources, spec,
                               lambda: build_arrays(corpus, spec, mesh), extra=extra)
        st = arrays["stats"]
        log.info("%s split: %d samples from %d sequences (stride %d); excluded %d sequences "
                 "(%d frames); frames without SMPL fit: %d (dropped %d); [%s]", split,
                 st["samples"], st["sequences"], stride, st["excluded_sequences"],
                 st["excluded_frames"], st["no_smpl_frames"], st["dropped_no_smpl"],
                 st.get("cache", ""))
        out[split] = LiftingDataset(arrays, name=split, info=info, cameras=corpus.cameras)
    return out


def check_sources(cfg, splits=SPLITS):
    """Every missing input file of a run in one error, each with where it comes from.

    The files are the dataset format's ``required_files`` (a format without that method is
    not checked ahead) and, for a model with mesh targets, the SMPL body model. For a real-
    data config (DATASET.synthetic false) the body model's advice is the download only.
    """
    from lib.body.smpl import HOW_TO_DOWNLOAD, HOW_TO_GET, MODEL_FILES
    from lib.registry import model_entry
    d = cfg.DATASET
    subjects = sorted(set(d.test_subjects if "test" in splits else [])
                      | set(d.train_subjects if {"train", "val"} & set(splits) else []))
    fmt = get_format(d.format)
    required = list(getattr(fmt, "required_files", lambda c, s: [])(cfg, subjects))
    if model_entry(cfg.MODEL.name).needs_mesh:
        required.append((Path(cfg.smpl_dir) / MODEL_FILES["neutral"],
                         HOW_TO_GET if d.synthetic else HOW_TO_DOWNLOAD))
    missing = [(Path(p), how) for p, how in required if not Path(p).is_file()]
    if not missing:
        return
    hows = list(dict.fromkeys(how for _, how in missing))
    parts = [f"{len(missing)} input file(s) of this run are missing: "
             + "; ".join(f"{p} [{hows.index(how) + 1}]" for p, how in missing) + "."]
    parts += [f"[{i + 1}] {how}" for i, how in enumerate(hows)]
    if not d.synthetic:
        parts.append("(To run without licensed data, use a *_synthetic YAML, e.g. "
                     "asset/yaml/HGN_synthetic_train.yml.)")
    raise MissingFileError(" ".join(parts))
