"""Human3.6M's sequence table (metadata.xml) in the npz reader/writer, and the 32-joint 3D file.

Rows checked by hand against the published table: S9 'Greeting' is (5, 2) and 'Greeting 1'
(5, 1); S5 'Photo' is (12, 1) and 'Photo 2' (12, 2), while S1 'Photo 1' is (12, 1) and 'Photo'
(12, 2); S5 'Discussion 2'/'Discussion 3' are (3, 1)/(3, 2).
"""
import numpy as np
import pytest

from lib.data.corpus import PoseCorpus, Sequence
from lib.data.formats.h36m_npz import (DUPLICATES_32, FILE_3D, expand_17_to_32, read_h36m_npz,
                                       write_h36m_npz)
from lib.data.formats.h36m_sequences import TABLE, index_names, npz_name
from lib.data.lifting import LiftingSpec, build_arrays
from lib.data.selection import subsample
from lib.geometry.camera import h36m_cameras
from lib.geometry.skeleton import CORRUPTED_SEQUENCES, KEEP_32_TO_17
from tests.test_formats import STANDING_17, load_npz, save_npz, walking_joints

# VideoPose3D's Human36mDataset: remove_joints([4, 5, 9, 10, 11, 16, 20, 21, 22, 23, 24, 28, 29,
# 30, 31]) keeps these 32-indices, in this order.
VIDEOPOSE3D_KEPT = [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]


@pytest.mark.parametrize("subject, action_idx, sub, name", [
    (9, 5, 2, "Greeting"), (9, 5, 1, "Greeting 1"), (11, 5, 1, "Greeting 2"),
    (5, 12, 1, "Photo"), (5, 12, 2, "Photo 2"), (1, 12, 1, "Photo 1"), (1, 12, 2, "Photo"),
    (1, 15, 1, "WalkDog 1"), (1, 15, 2, "WalkDog"), (5, 3, 1, "Discussion 2"),
    (5, 3, 2, "Discussion 3"), (9, 10, 2, "SittingDown 1"), (9, 13, 1, "Waiting 1"),
    (1, 4, 1, "Eating 2"), (6, 13, 1, "Waiting 3"), (11, 2, 1, "Directions 1")])
def test_hand_checked_rows(subject, action_idx, sub, name):
    assert npz_name(subject, action_idx, sub) == name
    assert index_names(subject, [name]) == {name: (action_idx, sub)}


def test_table_is_complete_and_inverts():
    assert len(TABLE) == 7 * 15 * 2
    for subject in (1, 5, 6, 7, 8, 9, 11):
        names = [npz_name(subject, a, s) for a in range(2, 17) for s in (1, 2)]
        assert len(set(names)) == 30
        index = index_names(subject, names)
        assert sorted(index.values()) == [(a, s) for a in range(2, 17) for s in (1, 2)]
    # metadata.xml's own spelling of S1's photo and dog sequences reads too
    assert index_names(1, ["TakingPhoto", "WalkingDog 1"]) == {"TakingPhoto": (12, 2),
                                                               "WalkingDog 1": (15, 1)}
    # no sorting rule: sorted as strings, S5's photo names would give the opposite answer
    # for S1 ('Photo' < 'Photo 1', yet S1 'Photo 1' is sub-action 1)
    assert index_names(1, ["Photo", "Photo 1"]) == {"Photo": (12, 2), "Photo 1": (12, 1)}
    assert index_names(5, ["Photo", "Photo 2"]) == {"Photo": (12, 1), "Photo 2": (12, 2)}


def test_sequences_outside_the_table():
    # another subject id: '<Action> <sub>'; a third clip of a table subject avoids real names
    assert npz_name(12, 14, 1) == "Walking 1" and npz_name(12, 14, 3) == "Walking 3"
    assert npz_name(5, 3, 3) == "Discussion (3)"        # 'Discussion 3' is S5's (3, 2)
    assert npz_name(1, 14, 3) == "Walking 3"
    assert index_names(5, ["Discussion (3)", "Discussion 3"]) == {
        "Discussion (3)": (3, 3), "Discussion 3": (3, 2)}
    # bare names of unknown subjects take the lowest free sub-action
    assert index_names(12, ["Walking", "Walking 1"]) == {"Walking 1": (14, 1), "Walking": (14, 2)}
    with pytest.raises(ValueError, match="both denote action 12 sub-action 1"):
        index_names(1, ["Photo 1", "TakingPhoto 1"])              # two spellings, one sequence
    with pytest.raises(ValueError, match="unknown Human3.6M action"):
        index_names(1, ["Dancing"])


def _s9_corpus():
    rng = np.random.default_rng(3)
    seqs = [Sequence(subject=9, action_idx=a, subaction_idx=s, joints_world=walking_joints(rng),
                     frame_idx=np.arange(6)) for a in (5, 10, 13) for s in (1, 2)]
    return PoseCorpus(seqs, {9: h36m_cameras(9)}, "s9")


def test_s9_exclusions_on_npz_drop_the_table_names(tmp_path):
    """HGN excludes (5, 2), (10, 2), (13, 1) of S9: in the npz those are 'Greeting',
    'SittingDown 1' and 'Waiting 1' (the sorting rule dropped 'Greeting 1' and 'Waiting')."""
    write_h36m_npz(_s9_corpus(), tmp_path, extras=False)        # the public layout: names only
    names = sorted(load_npz(tmp_path / FILE_3D)["positions_3d"]["S9"])
    assert names == ["Greeting", "Greeting 1", "SittingDown", "SittingDown 1", "Waiting",
                     "Waiting 1"]
    corpus = read_h36m_npz(tmp_path)
    kept, stats = subsample(corpus, exclude=CORRUPTED_SEQUENCES)
    excluded = {npz_name(*key) for key in stats["sequences_excluded"]}
    assert excluded == {"Greeting", "SittingDown 1", "Waiting 1"}
    assert {npz_name(*s.key) for s in kept.sequences} == {"Greeting 1", "SittingDown", "Waiting"}


def test_real_names_in_a_public_file_map_by_the_table(tmp_path):
    """A file written elsewhere (no sequence_index extra) with S1's real keys."""
    write_h36m_npz(_s9_corpus(), tmp_path, extras=False)
    c3 = load_npz(tmp_path / FILE_3D)
    c2 = load_npz(tmp_path / "data_2d_h36m_gt.npz")
    arr3, arr2 = c3["positions_3d"]["S9"]["Greeting"], c2["positions_2d"]["S9"]["Greeting"]
    keys = ["Photo 1", "Photo", "WalkDog 1", "WalkDog", "Eating 2", "Eating"]
    c3["positions_3d"] = {"S1": {k: arr3 for k in keys}}
    c2["positions_2d"] = {"S1": {k: arr2 for k in keys}}
    save_npz(tmp_path / FILE_3D, **c3)
    save_npz(tmp_path / "data_2d_h36m_gt.npz", **c2)
    corpus = read_h36m_npz(tmp_path)
    assert sorted(s.key for s in corpus.sequences) == [
        (1, 4, 1), (1, 4, 2), (1, 12, 1), (1, 12, 2), (1, 15, 1), (1, 15, 2)]


# ----------------------------------------------------------------------------- 32 joints
def test_expand_17_to_32_keeps_the_17_and_fills_like_the_real_file():
    x = walking_joints(np.random.default_rng(0)).astype(np.float32)
    full = expand_17_to_32(x)
    assert full.shape == (6, 32, 3) and full.dtype == np.float32
    np.testing.assert_array_equal(full[:, VIDEOPOSE3D_KEPT], x)     # VideoPose3D's indexing
    for dst, src in DUPLICATES_32.items():                           # the real file's repeats
        np.testing.assert_array_equal(full[:, dst], full[:, src])
    np.testing.assert_array_equal(full[:, 16], x[:, 8])              # thorax (17-index 8)
    # the standing pose faces -y (left hip at +x): toes 130 mm ahead of the ankle, 50 mm lower
    one = expand_17_to_32(STANDING_17[None])[0]
    np.testing.assert_allclose(one[4], STANDING_17[3] + (0, -130, -50), atol=1e-9)
    np.testing.assert_allclose(one[9], STANDING_17[6] + (0, -130, -50), atol=1e-9)
    # hand tip 90 mm on along the forearm: L elbow (200, 0, 1150) -> wrist (210, 0, 900)
    d = np.array([10, 0, -250]) / np.hypot(10, 250)
    np.testing.assert_allclose(one[22], STANDING_17[13] + 90 * d, atol=1e-9)


def test_the_3d_file_holds_32_joints_and_the_extras_are_never_targets(tmp_path):
    corpus = _s9_corpus()
    write_h36m_npz(corpus, tmp_path, joints_2d=17)
    content = load_npz(tmp_path / FILE_3D)
    greeting = content["positions_3d"]["S9"]["Greeting"]
    assert greeting.shape == (6, 32, 3) and greeting.dtype == np.float32
    np.testing.assert_allclose(greeting[:, VIDEOPOSE3D_KEPT] * 1000,
                               corpus.sequence(9, 5, 2).joints_world, atol=1e-3)
    spec = LiftingSpec(num_joints=17)
    before = build_arrays(read_h36m_npz(tmp_path), spec)
    # move every non-kept joint far away: inputs and targets must not change
    extra = [j for j in range(32) if j not in KEEP_32_TO_17]
    for key in ("positions_3d", "positions_3d_mm"):
        for name, arr in content[key]["S9"].items():
            arr = arr.copy()
            arr[:, extra] += 5000 if key == "positions_3d_mm" else 5.0
            content[key]["S9"][name] = arr
    save_npz(tmp_path / FILE_3D, **content)
    after = build_arrays(read_h36m_npz(tmp_path), spec)
    for k in ("input_2d", "target_3d", "root_cam"):
        np.testing.assert_array_equal(before[k], after[k])
    np.testing.assert_allclose(before["target_3d"][:, 0], 0)        # root-relative, 17 joints
    assert before["target_3d"].shape[1] == 17
