"""GraphSH: graphs and pooling maps, parameter counts, batch-1, gradients, errors."""
import numpy as np
import pytest
import torch

from lib.geometry.skeleton import H36M16, H36M17
from lib.graphs.hourglass_graphs import (GROUPS_8_TO_4, GROUPS_16_TO_8, build_hourglass_graphs,
                                         check_unpool_map, fine_groups, unpool_map)
from lib.models.gconv import GCONV_VARIANTS
from lib.models.graph_sh import BitDropout, GraphConvBlock, GraphSH, SkeletalPool, SkeletalUnpool
from lib.models.utils import count_parameters, describe_model

# counted from the public GraphSH code (C=64, 4 stacks), see docs/graphsh.md
PUBLISHED_COUNTS = {
    "vanilla": 224_907, "dc_vanilla": 438_027, "semantic": 438_657, "modulated": 461_387,
    "convst": 651_147, "preagg": 1_848_843, "postagg": 1_848_843,
    "dc_preagg": 3_685_899, "dc_postagg": 3_685_899, "nosharing": 19_967_499,
}
CORRECT_UNPOOL_16 = [3, 2, 0, 0, 2, 1, 1, 3, 4, 4, 7, 6, 6, 7, 5, 5]    # docs/graphsh.md
PUBLIC_SWAPPED_UNPOOL_16 = [3, 2, 1, 1, 2, 0, 0, 3, 4, 4, 7, 6, 6, 7, 5, 5]
UNPOOL_8 = [0, 0, 1, 1, 3, 2, 2, 3]
LEFT_LEG, RIGHT_LEG = (4, 5, 6), (1, 2, 3)


# --- graphs and maps -------------------------------------------------------------------------

def test_graph_sizes_and_nonzeros():
    graphs = build_hourglass_graphs()
    assert graphs.num_nodes == (16, 8, 4)
    assert [int((a > 0).sum()) for a in graphs.adjacency] == [46, 22, 10]
    for a in graphs.adjacency:
        torch.testing.assert_close(a.sum(1), torch.ones(a.shape[0]))       # D^-1 (A + I)
    assert graphs.adjacency[0][8].max().item() == pytest.approx(0.2)       # Thorax: 4 bones + self


def test_unpool_maps_are_the_inverse_of_the_groups():
    graphs = build_hourglass_graphs()
    assert graphs.unpool_maps[0] == CORRECT_UNPOOL_16
    assert graphs.unpool_maps[1] == UNPOOL_8
    check_unpool_map(graphs.unpool_maps[0], GROUPS_16_TO_8)
    check_unpool_map(graphs.unpool_maps[1], GROUPS_8_TO_4)


def test_public_swapped_map_is_rejected():
    with pytest.raises(ValueError, match="fine node 2"):
        check_unpool_map(PUBLIC_SWAPPED_UNPOOL_16, GROUPS_16_TO_8)


def test_left_stays_left():
    up = build_hourglass_graphs().unpool_maps[0]
    left, right = set(H36M16.joints_left), set(H36M16.joints_right)
    for fine in LEFT_LEG:
        group = set(GROUPS_16_TO_8[up[fine]])
        assert fine in group and not group & (right - {1})     # only the hip pair mixes sides
    for fine in RIGHT_LEG:
        group = set(GROUPS_16_TO_8[up[fine]])
        assert fine in group and not group & (left - {4})
    for fine in (5, 6):                                        # lower legs: purely one side
        assert set(GROUPS_16_TO_8[up[fine]]) <= left
    for fine in (2, 3):
        assert set(GROUPS_16_TO_8[up[fine]]) <= right


def test_unpool_map_errors():
    with pytest.raises(ValueError, match="no pooling group"):
        unpool_map([(0, 1)], 3)
    with pytest.raises(ValueError, match="groups 0 and 1"):
        unpool_map([(0, 1), (1, 2)], 3)


def test_pool_is_groupwise_max_and_unpool_copies_back():
    graphs = build_hourglass_graphs()
    torch.manual_seed(0)
    x = torch.randn(16, 3, 5)                                  # (N, B, C) node-major
    pooled = SkeletalPool(graphs.pool_groups[0])(x)
    for k, group in enumerate(GROUPS_16_TO_8):
        expected = torch.maximum(x[group[0]], x[group[1]])
        torch.testing.assert_close(pooled[k], expected)
    restored = SkeletalUnpool(graphs.unpool_maps[0])(pooled)
    for k, group in enumerate(GROUPS_16_TO_8):
        for fine in group:
            torch.testing.assert_close(restored[fine], pooled[k])
    # two levels down and back: every joint sees the max of its 4-joint super-group
    low = SkeletalPool(graphs.pool_groups[1])(pooled)
    back = SkeletalUnpool(graphs.unpool_maps[0])(SkeletalUnpool(graphs.unpool_maps[1])(low))
    for fine in range(16):
        mid = graphs.unpool_maps[0][fine]
        members = [j for m in GROUPS_8_TO_4[graphs.unpool_maps[1][mid]] for j in GROUPS_16_TO_8[m]]
        torch.testing.assert_close(back[fine], x[members].amax(0))


# --- the 17-joint input graph (Neck/Nose kept) -----------------------------------------------

def test_17_joint_groups_add_neck_nose_to_the_thorax_head_group():
    groups = fine_groups(17)
    names = [tuple(H36M17.joint_names[j] for j in g) for g in groups]
    # by hand: the 16-joint pairs renumbered to H36M-17 (index >= 9 shifts by one) ...
    assert groups == ((2, 3), (5, 6), (1, 4), (0, 7), (8, 9, 10), (15, 16), (12, 13), (11, 14))
    assert names[4] == ("Neck", "Nose", "Head")
    assert sorted(j for g in groups for j in g) == list(range(17))
    graphs = build_hourglass_graphs(num_joints=17)
    assert graphs.num_nodes == (17, 8, 4)
    assert graphs.unpool_maps[0] == [3, 2, 0, 0, 2, 1, 1, 3, 4, 4, 4, 7, 6, 6, 7, 5, 5]
    assert graphs.unpool_maps[1] == UNPOOL_8                      # coarse levels unchanged
    # the pairs are padded with their first member so one gather serves a 3-member group
    assert graphs.pool_groups[0][0] == (2, 3, 2) and graphs.pool_groups[0][4] == (8, 9, 10)


def test_17_joint_pool_is_the_max_over_each_group():
    graphs = build_hourglass_graphs(num_joints=17)
    x = torch.randn(17, 2, 3)
    pooled = SkeletalPool(graphs.pool_groups[0])(x)
    for k, group in enumerate(fine_groups(17)):
        torch.testing.assert_close(pooled[k], x[list(group)].amax(0))


@pytest.mark.parametrize("gcn,per_node", [("vanilla", False), ("dc_vanilla", False),
                                          ("convst", False), ("preagg", True),
                                          ("dc_preagg", True), ("nosharing", True)])
def test_17_joint_parameter_counts(gcn, per_node):
    # weights shared over nodes: the 16-joint count; per-node weights grow with the extra node
    n17 = count_parameters(GraphSH(gcn=gcn, num_joints=17))
    assert (n17 > PUBLISHED_COUNTS[gcn]) if per_node else (n17 == PUBLISHED_COUNTS[gcn])


def test_17_joint_model_forward_and_gradients():
    torch.manual_seed(0)
    model = GraphSH(num_joints=17, hid_dim=16, p_dropout=0.0, se_reduction=2)
    out = model(torch.randn(3, 17, 2))["pose"]
    assert out.shape == (3, 17, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(ValueError, match=r"\(B, 17, 2\)"):
        model(torch.zeros(2, 16, 2))


# --- the network -----------------------------------------------------------------------------

@pytest.mark.parametrize("gcn", sorted(PUBLISHED_COUNTS))
def test_parameter_count_matches_reference(gcn):
    assert count_parameters(GraphSH(gcn=gcn)) == PUBLISHED_COUNTS[gcn]


def test_describe_model_line():
    line = describe_model(GraphSH())
    assert "gcn=dc_preagg" in line and "3,685,899 parameters" in line and "\n" not in line


@pytest.mark.parametrize("gcn", sorted(GCONV_VARIANTS))
def test_batch_of_one_in_eval_and_train(gcn):
    torch.manual_seed(0)
    model = GraphSH(gcn=gcn, hid_dim=8)
    x = torch.randn(1, 16, 2)
    model.train()
    out = model(x)["pose"]
    assert out.shape == (1, 16, 3) and torch.isfinite(out).all()
    out.sum().backward()
    model.eval()
    a, b = model(x)["pose"], model(x)["pose"]
    assert a.shape == (1, 16, 3) and torch.equal(a, b)


@pytest.mark.parametrize("gcn", sorted(GCONV_VARIANTS))
def test_gradient_reaches_every_parameter(gcn):
    torch.manual_seed(1)
    # 8 SE hidden units: with hid_dim 8 the single one can be a dead ReLU for a tiny batch
    model = GraphSH(gcn=gcn, hid_dim=16, p_dropout=0.0, se_reduction=2)
    out = model(torch.randn(3, 16, 2))["pose"]
    torch.nn.functional.mse_loss(out, torch.randn(3, 16, 3)).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_eval_output_does_not_depend_on_the_rest_of_the_batch():
    torch.manual_seed(2)
    model = GraphSH(hid_dim=16).eval()
    x = torch.randn(5, 16, 2)
    torch.testing.assert_close(model(x)["pose"][2:3], model(x[2:3])["pose"], rtol=1e-5, atol=1e-6)


def test_batchnorm_over_node_major_view_equals_bn_on_bcn():
    torch.manual_seed(3)
    adj = build_hourglass_graphs().adjacency[0]
    block = GraphConvBlock("vanilla", 4, 6, adj, p_dropout=0.0).train()
    reference = torch.nn.BatchNorm1d(6).train()
    x = torch.randn(16, 5, 4)                                     # (N, B, C)
    pre = block.gconv.forward_node_major(x)                       # (N, B, C)
    expected = torch.relu(reference(pre.permute(1, 2, 0))).permute(2, 0, 1)   # BN on (B, C, N)
    torch.testing.assert_close(block(x), expected)
    torch.testing.assert_close(block.bn.running_mean, reference.running_mean)
    torch.testing.assert_close(block.bn.running_var, reference.running_var)


def test_graphs_are_not_in_the_state_dict():
    model = GraphSH(hid_dim=8)
    assert set(model.state_dict()) - {n for n, _ in model.named_buffers()} == \
        {n for n, _ in model.named_parameters()}
    assert not [k for k in model.state_dict() if "adj" in k or "order" in k or "mapping" in k]
    assert any("mapping" in n for n, _ in model.named_buffers())


def test_bad_configurations_are_clear_errors():
    with pytest.raises(ValueError, match="Neck/Nose"):
        GraphSH(num_joints=15)
    with pytest.raises(ValueError) as err:
        GraphSH(gcn="dcpreagg")
    assert all(name in str(err.value) for name in GCONV_VARIANTS)
    with pytest.raises(ValueError, match="16x16"):
        GraphSH(adj=torch.eye(17))
    with pytest.raises(ValueError, match=r"\(B, 16, 2\)"):
        GraphSH(hid_dim=8)(torch.zeros(2, 17, 2))


# --- dropout ---------------------------------------------------------------------------------

def test_bit_dropout_rate_scale_and_eval():
    torch.manual_seed(4)
    drop = BitDropout(0.25)
    x = torch.ones(200_000)
    y = drop(x)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - 0.25) < 0.005                          # ~5 sigma at n = 2e5
    assert torch.equal(y[y != 0], torch.full_like(y[y != 0], 1 / 0.75))
    torch.manual_seed(5)
    a = drop(x[:1001])
    torch.manual_seed(5)
    assert torch.equal(a, drop(x[:1001]))                       # seeded, odd sizes fine
    assert torch.equal(drop.eval()(x), x)
    with pytest.raises(ValueError):
        BitDropout(1.0)


# --- 17-joint CPN input end to end -----------------------------------------------------------

def test_cpn_with_17_joints_trains_and_tests_end_to_end(tmp_path):
    """DATASET.num_joints 17 with GraphSH: the CPN file's Neck/Nose is kept as an input node and
    a target; 16 drops it. Both read the same files."""
    import yaml
    from lib.data.synthetic.generate import generate_synthetic_h36m
    from lib.engine.run import train_main
    from lib.experiment import load_checkpoint
    data = tmp_path / "Synthetic"
    generate_synthetic_h36m(out_dir=data, seed=4, frames_per_sequence=12, subjects=(1, 9),
                            actions=("Walking", "Sitting"), log=lambda *a: None)
    results = {}
    for joints in (16, 17):
        cfg = {"output_dir": str(tmp_path / f"exp{joints}"), "cache_dir": str(tmp_path / "cache"),
               "DATASET": {"format": "npz", "root": str(data), "keypoints": "cpn_ft_h36m_dbb",
                           "num_joints": joints, "train_subjects": [1], "test_subjects": [9],
                           "require_smpl": False, "exclude_corrupted": False},
               "MODEL": {"name": "GraphSH", "hid_dim": 8, "num_stacks": 2},
               "TRAIN": {"epochs": 1, "batch_size": 64, "lr": 0.001, "num_threads": 1,
                         "print_freq": 0},
               "TEST": {"batch_size": 256}}
        path = tmp_path / f"cpn{joints}.yml"
        path.write_text(yaml.safe_dump(cfg))
        results[joints] = train_main(["--cfg", str(path)])
        final = next((tmp_path / f"exp{joints}").glob("exp_*/checkpoint/final.pth.tar"))
        state = load_checkpoint(final)["model_state_dict"]
        # the per-node weights of the input convolution have one row per input joint
        per_node = [v for k, v in state.items() if k.startswith("input_block.gconv") and v.dim() >= 2
                    and joints in v.shape]
        assert per_node, f"no input-layer tensor with {joints} nodes"
        from lib.engine.run import load_trained_model
        from lib.config import load_config
        model, _, _ = load_trained_model(load_config(str(path)), str(final))
        assert model(torch.zeros(2, joints, 2))["pose"].shape == (2, joints, 3)
    for joints in (16, 17):
        assert np.isfinite(results[joints]["test_mpjpe"])
    # the same frames are evaluated either way; the 17-joint mean-pose error averages one
    # joint more, so it differs
    assert results[16]["mean_pose_test_mpjpe"] != results[17]["mean_pose_test_mpjpe"]
