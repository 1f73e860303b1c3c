"""HGN, its non-local block and the official-checkpoint helpers.

The graphs are official-size stand-ins (17/48/96 nodes, 49/241/487 non-zeros, the official fake
positions): ``stand_in_graph`` builds them, and a test below checks it really does.
"""
import copy

import pytest
import torch
import torch.nn.functional as F

from lib.geometry.skeleton import H36M17
from lib.graphs.skeleton_graph import skeleton_adjacency
from lib.models.gconv import SemGraphConv
from lib.models.hgn import HGN, sem_gconv_nm
from lib.models.nonlocal_block import NonLocalBlock
from lib.models.official_hgn import (KIND_BARE, KIND_FRAMEWORK, KIND_OFFICIAL, OFFICIAL_GRAPHS,
                                     classify_checkpoint, load_hgn_weights, stand_in_graph)

FAKE48 = [23, 35, 39]
FAKE96 = [3, 7, 11, 15, 19, 23, 27, 46, 47, 70, 71, 78, 79]


@pytest.fixture(scope="module")
def graphs():
    adj17 = skeleton_adjacency(H36M17)
    adj48 = stand_in_graph(48, 241, FAKE48, seed=1)
    adj96 = stand_in_graph(96, 487, FAKE96, seed=2)
    return adj17, adj48, adj96


@pytest.fixture(scope="module")
def model(graphs):
    torch.manual_seed(0)
    return HGN(*graphs)


def randomise_batchnorm(module, seed=0):
    """Non-zero BN affine parameters, so that the non-local blocks are no longer the identity."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=gen))
                m.bias.copy_(0.2 * torch.randn(m.num_features, generator=gen))


# ----------------------------------------------------------------------------- stand-in graphs
@pytest.mark.parametrize("n, nnz, fake", [(48, 241, FAKE48), (96, 487, FAKE96), (17, 49, [])])
def test_stand_in_graph_has_the_official_sizes(n, nnz, fake):
    adj = stand_in_graph(n, nnz, fake, seed=3)
    mask = adj > 0
    assert adj.shape == (n, n) and int(mask.sum()) == nnz
    assert torch.equal(mask, mask.T)
    empty = torch.nonzero(mask.sum(1) == 0).flatten().tolist()
    assert empty == sorted(fake)
    real = [i for i in range(n) if i not in fake]
    assert bool(mask[real, real].all())                                  # self-loops on real nodes
    torch.testing.assert_close(adj[real].sum(1), torch.ones(len(real)))  # row-normalised
    reach = torch.zeros(n, dtype=torch.bool)                             # connected over real nodes
    reach[real[0]] = True
    for _ in range(n):
        reach = reach | (mask.float() @ reach.float() > 0)
    assert reach[real].all()


def test_stand_in_graph_rejects_impossible_counts():
    with pytest.raises(ValueError, match="non-zeros"):
        stand_in_graph(10, 12, [])          # odd number of off-diagonal entries


# ----------------------------------------------------------------------------- non-local block
def concat_form_nonlocal(block: NonLocalBlock, x, batch_stats_only=False):
    """The original computation, literally: (B, 2C', N, N) concatenation, 1x1 Conv2d, ReLU, /N.
    ``batch_stats_only`` normalises with batch statistics without touching the BN buffers."""
    xc = x.transpose(1, 2)                                               # (B, C, N)
    b = xc.shape[0]
    inter = block.inter_channels
    g = block.g(xc).view(b, inter, -1).permute(0, 2, 1)
    theta = block.theta(xc).view(b, inter, -1, 1)
    phi = block.phi(xc).view(b, inter, 1, -1)
    h, w = theta.shape[2], phi.shape[3]
    cat = torch.cat([theta.expand(-1, -1, -1, w), phi.expand(-1, -1, h, -1)], dim=1)
    f = block.concat_project(cat).view(b, h, w)
    y = torch.matmul(f / w, g).permute(0, 2, 1).contiguous()
    if batch_stats_only:
        bn = block.W[1]
        wy = F.batch_norm(block.W[0](y), None, None, bn.weight, bn.bias, True)
    else:
        wy = block.W(y)
    return (wy + xc).transpose(1, 2)


@pytest.mark.parametrize("sub_sample, nodes", [(1, 17), (1, 96), (2, 16), (2, 17)])
@pytest.mark.parametrize("training", [True, False])
def test_nonlocal_broadcast_equals_concatenation(sub_sample, nodes, training):
    torch.manual_seed(1)
    block = NonLocalBlock(128, 64, sub_sample=sub_sample).double()   # exact up to rounding
    randomise_batchnorm(block)
    with torch.no_grad():
        block.W[1].running_mean.normal_()
        block.W[1].running_var.uniform_(0.5, 2)
    block.train(training)
    reference = copy.deepcopy(block)
    x = torch.randn(5, nodes, 128, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    out, out_ref = block(x), concat_form_nonlocal(reference, x_ref)
    torch.testing.assert_close(out, out_ref, rtol=1e-10, atol=1e-10)
    assert (out - x).abs().max() > 1e-2          # the block really does something here
    grad = torch.randn_like(out)
    out.backward(grad)
    out_ref.backward(grad)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-10, atol=1e-10)
    for (name, p), p_ref in zip(block.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, p_ref.grad, rtol=1e-9, atol=1e-10, msg=name)
    if training:   # running statistics updated identically
        torch.testing.assert_close(block.W[1].running_mean, reference.W[1].running_mean)


def test_nonlocal_starts_as_identity_and_keeps_official_shapes():
    block = NonLocalBlock(128)
    x = torch.randn(3, 17, 128)
    torch.testing.assert_close(block(x), x)
    shapes = {k: tuple(v.shape) for k, v in block.state_dict().items()}
    assert shapes["concat_project.0.weight"] == (1, 128, 1, 1)
    assert shapes["theta.weight"] == (64, 128, 1) and shapes["W.0.weight"] == (128, 64, 1)
    assert not block.g.bias.detach().any() and not block.W[1].weight.detach().any()


def test_nonlocal_never_builds_the_pairwise_concatenation(monkeypatch):
    """No (B, 2C', N, N) tensor: our forward must not call torch.cat on 4-D tensors or Conv2d."""
    block = NonLocalBlock(128)
    calls = []
    real_cat = torch.cat
    monkeypatch.setattr(torch, "cat", lambda ts, *a, **k: calls.append([t.dim() for t in ts]) or real_cat(ts, *a, **k))
    monkeypatch.setattr(torch.nn.Conv2d, "forward", lambda *a: pytest.fail("Conv2d called"))
    block(torch.randn(2, 96, 128))
    assert calls and all(max(dims) <= 2 for dims in calls)


# ----------------------------------------------------------------------------- graph conv
@pytest.mark.parametrize("c_in, c_out", [(2, 128), (128, 128), (128, 3)])
def test_node_major_sem_gconv_equals_module(graphs, c_in, c_out):
    torch.manual_seed(2)
    gc = SemGraphConv(c_in, c_out, graphs[2])      # the 96 graph, with its empty (fake) rows
    with torch.no_grad():
        gc.e.normal_()
    x = torch.randn(4, 96, c_in)
    torch.testing.assert_close(sem_gconv_nm(gc, x.transpose(0, 1)).transpose(0, 1), gc(x),
                               rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- state dict
def official_key_shapes(e17=49, e48=241, e96=487, n=(17, 48, 96)):
    """Every tensor of an official final.pth.tar and its shape (public HGN code, docs/hgn.md)."""
    hid, inter = 128, 64
    bn = lambda p, c=hid: {f"{p}.weight": (c,), f"{p}.bias": (c,), f"{p}.running_mean": (c,),
                           f"{p}.running_var": (c,), f"{p}.num_batches_tracked": ()}
    keys = {"gconv_input.0.gconv.W": (2, 2, hid), "gconv_input.0.gconv.e": (1, e17),
            "gconv_input.0.gconv.bias": (hid,), **bn("gconv_input.0.bn")}
    edges = {1: e17, 2: e48, 3: e96}
    for s, k in [(1, 1), (1, 2), (1, 3), (1, 4), (2, 1), (2, 2), (2, 3), (2, 4), (3, 3), (3, 4)]:
        p = f"gconv_layers_{s}_{k}"
        for gc in ("gconv1", "gconv2"):
            keys.update({f"{p}.0.{gc}.gconv.W": (2, hid, hid), f"{p}.0.{gc}.gconv.e": (1, edges[s]),
                         f"{p}.0.{gc}.gconv.bias": (hid,), **bn(f"{p}.0.{gc}.bn")})
        nl = f"{p}.1.nonlocal1"
        for conv in ("g", "theta", "phi"):
            keys.update({f"{nl}.{conv}.weight": (inter, hid, 1), f"{nl}.{conv}.bias": (inter,)})
        keys.update({f"{nl}.concat_project.0.weight": (1, 2 * inter, 1, 1),
                     f"{nl}.W.0.weight": (hid, inter, 1), f"{nl}.W.0.bias": (hid,), **bn(f"{nl}.W.1")})
    n17, n48, n96 = n
    fc = [("fc_1_2_1", n48, n17), ("fc_1_2_2", n48, n17), ("fc_1_2_3", n48, n17), ("fc_1_2_4", n48, n17),
          ("fc_1_2_5", n48, n17), ("fc_1_3_3", n96, n17), ("fc_1_3_4", n96, n17), ("fc_1_3_5", n96, n17),
          ("fc_2_1_2", n17, n48), ("fc_2_1_3", n17, n48), ("fc_2_1_4", n17, n48), ("fc_2_1_5", n17, n48),
          ("fc_2_3_3", n96, n48), ("fc_2_3_4", n96, n48), ("fc_2_3_5", n96, n48),
          ("fc_3_1_4", n17, n96), ("fc_3_1_5", n17, n96), ("fc_3_2_4", n48, n96), ("fc_3_2_5", n48, n96)]
    for name, nb, na in fc:
        keys.update({f"{name}.conv.weight": (nb, na, 1), f"{name}.conv.bias": (nb,)})
    for name, e in (("gconv_output", e17), ("gconv_output_48", e48), ("gconv_output_96", e96)):
        keys.update({f"{name}.W": (2, hid, 3), f"{name}.e": (1, e), f"{name}.bias": (3,)})
    return keys


def test_state_dict_is_exactly_the_official_one(model):
    expected = official_key_shapes()
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert sorted(ours) == sorted(expected)
    assert ours == expected
    assert ours["fc_1_2_1.conv.weight"] == (48, 17, 1)


def test_parameter_count_and_breakdown(model):
    count = lambda prefix: sum(p.numel() for k, p in model.named_parameters() if k.startswith(prefix))
    assert model.num_parameters() == 1_045_621
    assert "1,045,621" in model.describe()
    assert count("gconv_input") == 945
    assert count("gconv_layers_1_1.0") == 66_304 + 2 * 49
    assert count("gconv_layers_3_4.0") == 66_304 + 2 * 487
    assert count("gconv_layers_2_2.1") == 33_472
    assert count("fc_") == 39_558
    assert (count("gconv_output.") + count("gconv_output_48") + count("gconv_output_96")) == 820 + 1_012 + 1_258
    assert sum(count(f"gconv_layers_1_{k}") for k in range(1, 5)) == 4 * (66_402 + 33_472)
    assert sum(count(f"gconv_layers_3_{k}") for k in (3, 4)) == 2 * (67_278 + 33_472)


def test_sizes_come_from_the_graphs():
    torch.manual_seed(3)
    adj = [stand_in_graph(10, 28, [], 0), stand_in_graph(20, 58, [4, 9], 1), stand_in_graph(30, 89, [0], 2)]
    net = HGN(*adj, hid_dim=32)
    assert tuple(net.fc_1_3_3.conv.weight.shape) == (30, 10, 1)
    assert tuple(net.gconv_output_96.e.shape) == (1, 89)
    out = net(torch.randn(3, 10, 2))
    assert out["pose"].shape == (3, 10, 3) and out["mesh_mid"].shape == (3, 20, 3)
    assert out["mesh_fine"].shape == (3, 30, 3)


# ----------------------------------------------------------------------------- forward = original
def reference_forward(net: HGN, x):
    """The original network computed the original way: batch-major, SemGraphConv.forward, BN on
    (B, C, N), Conv1d ChannelTrans, the concatenation non-local block, and the five fusion points
    written out (out of place, in the original order)."""
    def block_bn(m, y):                 # batch statistics, buffers untouched
        return F.batch_norm(y.transpose(1, 2), None, None, m.weight, m.bias, True).transpose(1, 2)

    def gconv_block(blk, y):
        return torch.relu(block_bn(blk.bn, blk.gconv(y)))

    def layer(s, k, y):
        seq = getattr(net, f"gconv_layers_{s}_{k}")
        res = seq[0]
        y = y + gconv_block(res.gconv2, gconv_block(res.gconv1, y))
        return concat_form_nonlocal(seq[1].nonlocal1, y, batch_stats_only=True)

    fc = lambda a, b, k, y: getattr(net, f"fc_{a}_{b}_{k}").conv(y)
    h1 = gconv_block(net.gconv_input[0], x)
    h2 = fc(1, 2, 1, h1)
    a1, a2 = layer(1, 1, h1), layer(2, 1, h2)
    a1 = a1 + fc(2, 1, 2, a2)
    a2 = a2 + fc(1, 2, 2, a1)
    b1, b2 = layer(1, 2, a1), layer(2, 2, a2)
    b1 = b1 + fc(2, 1, 3, b2)
    b2 = b2 + fc(1, 2, 3, b1)
    h3 = fc(1, 3, 3, b1) + fc(2, 3, 3, b2)
    c1, c2, c3 = layer(1, 3, b1), layer(2, 3, b2), layer(3, 3, h3)
    c1 = c1 + fc(2, 1, 4, c2) + fc(3, 1, 4, c3)
    c2 = c2 + fc(1, 2, 4, c1) + fc(3, 2, 4, c3)
    c3 = c3 + fc(1, 3, 4, c1) + fc(2, 3, 4, c2)
    d1, d2, d3 = layer(1, 4, c1), layer(2, 4, c2), layer(3, 4, c3)
    d1 = d1 + fc(2, 1, 5, d2) + fc(3, 1, 5, d3)
    d2 = d2 + fc(1, 2, 5, d1) + fc(3, 2, 5, d3)
    d3 = d3 + fc(1, 3, 5, d1) + fc(2, 3, 5, d2)
    return net.gconv_output(d1), net.gconv_output_48(d2), net.gconv_output_96(d3)


def test_forward_and_gradients_equal_the_original_computation(graphs):
    torch.manual_seed(4)
    net = HGN(*graphs).double()          # float64: the two computations agree to rounding
    randomise_batchnorm(net)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(".e"):
                p.normal_(1.0, 0.5)
    x = torch.randn(6, 17, 2, dtype=torch.float64)
    out = net(x)
    ref = reference_forward(net, x)
    for key, r in zip(("pose", "mesh_mid", "mesh_fine"), ref):
        torch.testing.assert_close(out[key], r, rtol=1e-9, atol=1e-10, msg=key)
    loss = sum((o ** 2).mean() for o in out.values())
    grads = torch.autograd.grad(loss, list(net.parameters()))
    grads_ref = torch.autograd.grad(sum((r ** 2).mean() for r in ref), list(net.parameters()))
    for (name, _), g, g_ref in zip(net.named_parameters(), grads, grads_ref):
        torch.testing.assert_close(g, g_ref, rtol=1e-7, atol=1e-9, msg=name)


# ----------------------------------------------------------------------------- gradients
PRE_BN_BIAS = ".gconv.bias"   # cancelled by the BatchNorm after it: gradient exactly 0 in theory


def test_gradient_reaches_every_parameter(graphs):
    torch.manual_seed(5)
    net = HGN(*graphs)
    randomise_batchnorm(net)
    out = net(torch.randn(8, 17, 2))
    (100 * out["pose"].pow(2).mean() + out["mesh_mid"].pow(2).mean() + out["mesh_fine"].pow(2).mean()).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        if not name.endswith(PRE_BN_BIAS):
            assert p.grad.abs().max() > 0, f"no gradient reaches {name}"


def test_pose_loss_alone_reaches_the_fine_branch_through_fusion(graphs):
    torch.manual_seed(6)
    net = HGN(*graphs)
    randomise_batchnorm(net)
    net(torch.randn(8, 17, 2))["pose"].pow(2).mean().backward()
    for prefix in ("gconv_layers_3_3.0.gconv1.gconv.W", "gconv_layers_3_4.1.nonlocal1.theta.weight",
                   "fc_1_3_3.conv.weight", "fc_2_3_3.conv.weight", "fc_3_1_5.conv.weight"):
        assert net.get_parameter(prefix).grad.abs().max() > 0, prefix
    assert net.gconv_output_96.W.grad is None or float(net.gconv_output_96.W.grad.abs().max()) == 0


# ----------------------------------------------------------------------------- outputs & modes
def test_mesh_outputs_gathered_into_cluster_order(graphs):
    torch.manual_seed(7)
    mid_index = torch.tensor([i for i in range(48) if i not in FAKE48][::-1])
    fine_index = torch.randperm(96)[:83]
    full = HGN(*graphs).eval()
    gathered = HGN(*graphs, mid_index=mid_index, fine_index=fine_index).eval()
    gathered.load_state_dict(full.state_dict())
    x = torch.randn(3, 17, 2)
    a, b = full(x), gathered(x)
    assert b["mesh_mid"].shape == (3, 45, 3) and b["mesh_fine"].shape == (3, 83, 3)
    torch.testing.assert_close(b["mesh_mid"], a["mesh_mid"][:, mid_index])
    torch.testing.assert_close(b["mesh_fine"], a["mesh_fine"][:, fine_index])
    torch.testing.assert_close(b["pose"], a["pose"])
    with pytest.raises(ValueError, match="fine_index"):
        HGN(*graphs, fine_index=torch.tensor([0, 96]))


def test_eval_chunking_is_exact(graphs):
    torch.manual_seed(8)
    net = HGN(*graphs, eval_chunk=4)
    randomise_batchnorm(net)
    net(torch.randn(16, 17, 2))          # some running statistics
    net.eval()
    x = torch.randn(10, 17, 2)
    chunked = net(x)
    net.eval_chunk = None
    whole = net(x)
    for key in whole:
        torch.testing.assert_close(chunked[key], whole[key], rtol=1e-5, atol=1e-6)


def test_runs_under_bfloat16_autocast(model):
    x = torch.randn(4, 17, 2)
    net = copy.deepcopy(model)
    randomise_batchnorm(net)
    ref = net(x)["pose"]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x)
        loss = sum(o.float().pow(2).mean() for o in out.values())
    loss.backward()
    assert torch.isfinite(out["pose"].float()).all()
    rel = (out["pose"].float() - ref).norm() / ref.norm()
    assert rel < 0.1
    assert all(p.grad is not None for p in net.parameters())


def test_bad_inputs_get_clear_errors(graphs, model):
    with pytest.raises(ValueError, match=r"\(B, 17, 2\)"):
        model(torch.randn(2, 16, 2))
    with pytest.raises(ValueError, match="adj_mid must be a square"):
        HGN(graphs[0], torch.ones(48, 47), graphs[2])
    with pytest.raises(ValueError, match="no non-zero"):
        HGN(graphs[0], graphs[1], torch.zeros(96, 96))


# ----------------------------------------------------------------------------- checkpoints
def test_official_checkpoint_loads_strictly_and_says_so(graphs, model, tmp_path):
    torch.manual_seed(9)
    source = copy.deepcopy(model)
    randomise_batchnorm(source, seed=3)
    official = {"epoch": 150, "model_state_dict": source.state_dict(), "optim_state_dict": {},
                "scheduler_state_dict": {}, "train_log": [0.1], "test_log": {"surface": [], "joint": [40.0]}}
    torch.save(official, tmp_path / "final.pth.tar")
    target = HGN(*graphs).eval()
    info = load_hgn_weights(target, torch.load(tmp_path / "final.pth.tar", weights_only=False))
    assert info.kind == KIND_OFFICIAL and info.epoch == 150
    assert "official HGN checkpoint" in info.describe()
    x = torch.randn(2, 17, 2)
    torch.testing.assert_close(target(x)["pose"], source.eval()(x)["pose"])

    ours = dict(official, config={"MODEL": {}}, version="0.1")
    assert classify_checkpoint(ours).kind == KIND_FRAMEWORK
    dp = {f"module.{k}": v for k, v in source.state_dict().items()}     # DataParallel prefix, bare
    info = load_hgn_weights(target, dp)
    assert info.kind == KIND_BARE


def test_checkpoint_from_other_graphs_is_explained(graphs, model):
    other = HGN(graphs[0], graphs[1], stand_in_graph(96, 489, FAKE96, seed=9))
    with pytest.raises(ValueError, match="487 non-zeros, ours 489") as err:
        load_hgn_weights(other, {"epoch": 1, "model_state_dict": model.state_dict()})
    assert "gconv_output_96.e" in str(err.value)
    smaller = HGN(graphs[0], stand_in_graph(50, 250, [], seed=1), graphs[2])
    with pytest.raises(ValueError, match="node counts"):
        load_hgn_weights(smaller, {"model_state_dict": model.state_dict(), "epoch": 3})
    with pytest.raises(ValueError, match="missing keys"):
        load_hgn_weights(model, {"model_state_dict": {"gconv_output.W": model.gconv_output.W}})
    with pytest.raises(ValueError, match="model_state_dict"):
        classify_checkpoint({"weights": 1})


def test_official_graph_table_matches_the_reference():
    assert OFFICIAL_GRAPHS["mid"]["fake"] == tuple(FAKE48)
    assert OFFICIAL_GRAPHS["fine"]["fake"] == tuple(FAKE96)
    assert [g["nnz"] for g in OFFICIAL_GRAPHS.values()] == [49, 241, 487]
