"""Martinez's LinearModel and SemGCN: parameter counts from their formulas, shapes, gradients."""
import pytest
import torch

from lib.geometry.skeleton import H36M16, H36M17
from lib.graphs.skeleton_graph import skeleton_adjacency
from lib.models.baselines import SEMGCN_GROUPS_H36M16, LinearModel, SemGCN
from lib.models.nonlocal_block import GraphNonLocal, NonLocalBlock


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def semgcn_formula(nnz, hid=128, layers=4, non_local=False, c_in=2, c_out=3):
    """SemGraphConv: W (2, Ci, Co) + e (nnz) + bias (Co); a block adds BN (2 Co); a non-local
    block has g/theta/phi (C x C/2 + C/2 each), the 2 (C/2) -> 1 projection, W (C/2 x C + C), BN."""
    gconv = lambda ci, co: 2 * ci * co + nnz + co
    block = lambda ci, co: gconv(ci, co) + 2 * co
    inter = hid // 2
    nonlocal_ = 3 * (hid * inter + inter) + 2 * inter + (inter * hid + hid) + 2 * hid
    total = block(c_in, hid) + layers * 2 * block(hid, hid) + gconv(hid, c_out)
    return total + (layers + 1) * nonlocal_ if non_local else total


def test_semgcn_parameter_counts_match_the_published_sizes():
    adj16 = skeleton_adjacency(H36M16)
    nnz = int((adj16 > 0).sum())
    assert nnz == 16 + 2 * 15
    plain = SemGCN(adj16)
    assert n_params(plain) == semgcn_formula(nnz) == 267_343
    assert round(n_params(plain) / 1e6, 2) == 0.27
    with_nl = SemGCN(adj16, non_local=True, nodes_group=SEMGCN_GROUPS_H36M16)
    assert n_params(with_nl) == semgcn_formula(nnz, non_local=True) == 434_703
    assert round(n_params(with_nl) / 1e6, 2) == 0.43
    assert n_params(SemGCN(adj16, non_local=True)) == n_params(with_nl)   # grouping adds nothing


def test_semgcn_key_names_follow_the_public_code():
    keys = SemGCN(skeleton_adjacency(H36M16), non_local=True).state_dict().keys()
    assert "gconv_input.0.gconv.W" in keys and "gconv_input.1.nonlocal1.theta.weight" in keys
    assert "gconv_layers.0.gconv1.bn.running_var" in keys and "gconv_layers.7.nonlocal1.W.1.weight" in keys
    assert "gconv_output.e" in keys and "gconv_layers.8.gconv1.gconv.W" not in keys


@pytest.mark.parametrize("non_local, groups", [(False, None), (True, None), (True, SEMGCN_GROUPS_H36M16)])
def test_semgcn_forward_and_gradients(non_local, groups):
    torch.manual_seed(0)
    model = SemGCN(skeleton_adjacency(H36M16), non_local=non_local, nodes_group=groups)
    for m in model.modules():     # let the non-local blocks contribute
        if isinstance(m, torch.nn.BatchNorm1d):
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
    out = model(torch.randn(6, 16, 2))["pose"]
    assert out.shape == (6, 16, 3)
    out.pow(2).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        if not name.endswith(".gconv.bias"):      # cancelled by the BatchNorm that follows
            assert p.grad.abs().max() > 0, name


def test_grouped_nonlocal_is_reorder_pool_restore():
    """SemGCN's grouping: reorder joints pair by pair, pool phi/g per pair, restore the order."""
    torch.manual_seed(1)
    layer = GraphNonLocal(128, nodes_group=SEMGCN_GROUPS_H36M16)
    torch.nn.init.uniform_(layer.nonlocal1.W[1].weight, 0.5, 1.5)
    plain = NonLocalBlock(128, sub_sample=2)
    plain.load_state_dict(layer.nonlocal1.state_dict())
    x = torch.randn(4, 16, 128)
    order = [j for pair in SEMGCN_GROUPS_H36M16 for j in pair]
    expected = torch.empty_like(x)
    expected[:, order] = plain(x[:, order])
    torch.testing.assert_close(layer(x), expected)
    assert tuple(layer.nonlocal1.g[0].weight.shape) == (64, 128, 1)      # SemGCN's g.0 / phi.0 keys


def test_semgcn_rejects_bad_groups_and_inputs():
    adj16 = skeleton_adjacency(H36M16)
    with pytest.raises(ValueError, match="every node exactly once"):
        SemGCN(adj16, non_local=True, nodes_group=[[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="only applies with non_local"):
        SemGCN(adj16, nodes_group=SEMGCN_GROUPS_H36M16)
    with pytest.raises(ValueError, match=r"\(B, 16, 2\)"):
        SemGCN(adj16)(torch.randn(2, 17, 2))


def test_semgcn_on_the_17_joint_graph():
    model = SemGCN(skeleton_adjacency(H36M17))
    assert n_params(model) == semgcn_formula(49)
    assert model(torch.randn(3, 17, 2))["pose"].shape == (3, 17, 3)


def martinez_formula(j_in, j_out, size, stages):
    linear = lambda a, b: a * b + b
    return (linear(2 * j_in, size) + 2 * size + stages * 2 * (linear(size, size) + 2 * size)
            + linear(size, 3 * j_out))


@pytest.mark.parametrize("j_in, j_out, size, stages", [(17, 17, 1024, 2), (16, 16, 256, 3)])
def test_linear_model_parameters_and_shapes(j_in, j_out, size, stages):
    model = LinearModel(j_in, j_out, linear_size=size, num_stage=stages)
    assert n_params(model) == martinez_formula(j_in, j_out, size, stages)
    out = model(torch.randn(8, j_in, 2))["pose"]
    assert out.shape == (8, j_out, 3)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().max() > 0 for p in model.parameters())


def test_linear_model_default_size_and_dropout():
    torch.manual_seed(2)
    model = LinearModel()
    assert n_params(model) == 4_296_755                  # ~4.3 M, Martinez's published size
    x = torch.randn(4, 17, 2)
    model.train()
    assert not torch.allclose(model(x)["pose"], model(x)["pose"])     # dropout active
    model.eval()
    torch.testing.assert_close(model(x)["pose"], model(x)["pose"])
    with pytest.raises(ValueError, match=r"\(B, 17, 2\)"):
        model(torch.randn(4, 17, 3))
