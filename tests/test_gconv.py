"""Every graph-convolution variant against its formula (docs/graphsh.md).

The reference implementations below loop over batch items and nodes explicitly, so they
are independent of the matrix formulations in lib/models/gconv.py. The tiny test graph has
unequal degrees, so the row-normalised Â is not symmetric (that is what makes the
nosharing variant's transposed indexing and the convst triangles observable).
"""
import math

import pytest
import torch

from lib.graphs.skeleton_graph import adjacency_from_edges
from lib.models.gconv import GCONV_VARIANTS, ModulatedGraphConv, build_gconv

TINY_EDGES = [(0, 1), (1, 2), (1, 3)]      # a star around node 1: degrees 1, 3, 1, 1
CIN, COUT, BATCH = 3, 2, 2


def tiny_adj():
    return adjacency_from_edges(4, TINY_EDGES)


def hand_set(module):
    """Distinct, deterministic values for every parameter (no RNG)."""
    with torch.no_grad():
        for k, (name, p) in enumerate(sorted(module.named_parameters())):
            vals = torch.sin(torch.arange(p.numel(), dtype=torch.float64) * 0.77 + k)
            if name == "Q":
                vals = 0.1 * vals          # an asymmetric offset, as after some training
            if name == "M":
                vals = 1 + 0.5 * vals
            p.copy_(vals.view(p.shape).float())
    return module


def xw(x_row, w):
    """One node's features through a (Ci, Co) weight, as a plain double loop."""
    return [sum(x_row[c] * w[c][d] for c in range(len(x_row))) for d in range(len(w[0]))]


def axpy(acc, a, v):
    for d in range(len(v)):
        acc[d] += a * v[d]


def ref_vanilla(adj, p, x):
    n = len(adj)
    return [[[p["bias"][d] + sum(adj[i][j] * xw(x[b][j], p["W"][0])[d] for j in range(n))
              for d in range(COUT)] for i in range(n)] for b in range(len(x))]


def ref_decoupled_shared(adj, w0, w1, x, bias):
    n, out = len(adj), []
    for b in range(len(x)):
        rows = []
        for i in range(n):
            acc = list(bias)
            for j in range(n):
                axpy(acc, adj[i][j], xw(x[b][j], w0 if j == i else w1))
            rows.append(acc)
        out.append(rows)
    return out


def ref_dc_vanilla(adj, p, x):
    return ref_decoupled_shared(adj, p["W"][0], p["W"][1], x, p["bias"])


def ref_preagg(adj, p, x, decoupled=False):
    n, out = len(adj), []
    for b in range(len(x)):
        rows = []
        for i in range(n):
            acc = list(p["bias"])
            for j in range(n):
                k = 1 if decoupled and j != i else 0
                axpy(acc, adj[i][j], xw(x[b][j], p["W"][k][j]))       # source node's weight
            rows.append(acc)
        out.append(rows)
    return out


def ref_postagg(adj, p, x, decoupled=False):
    n, out = len(adj), []
    for b in range(len(x)):
        rows = []
        for i in range(n):
            agg = [[0.0] * CIN, [0.0] * CIN]           # [self, neighbours] (or all in [0])
            for j in range(n):
                axpy(agg[1 if decoupled and j != i else 0], adj[i][j], x[b][j])
            acc = list(p["bias"])
            for k in range(2 if decoupled else 1):
                axpy(acc, 1.0, xw(agg[k], p["W"][k][i]))               # destination's weight
            rows.append(acc)
        out.append(rows)
    return out


def ref_convst(adj, p, x):
    n, out = len(adj), []
    for b in range(len(x)):
        rows = []
        for i in range(n):
            acc = list(p["bias"])
            for j in range(n):
                k = 0 if j == i else (1 if j > i else 2)
                axpy(acc, adj[i][j], xw(x[b][j], p["W"][k]))
            rows.append(acc)
        out.append(rows)
    return out


def ref_nosharing(adj, p, x):
    n, out = len(adj), []
    for b in range(len(x)):
        rows = []
        for w in range(n):
            acc = list(p["bias"])
            for h in range(n):
                axpy(acc, adj[h][w], xw(x[b][h], p["W"][h][w]))        # Â transposed
            rows.append(acc)
        out.append(rows)
    return out


def ref_semantic(adj, p, x):
    n, e_iter = len(adj), iter(p["e"][0])
    logits = [[next(e_iter) if adj[i][j] > 0 else None for j in range(n)] for i in range(n)]
    att = []
    for i in range(n):
        z = sum(math.exp(v) for v in logits[i] if v is not None)
        att.append([0.0 if v is None else math.exp(v) / z for v in logits[i]])
    return ref_decoupled_shared(att, p["W"][0], p["W"][1], x, p["bias"])


def ref_modulated(adj, p, x):
    n, q = len(adj), p["Q"]
    a = [[((adj[i][j] + q[i][j]) + (adj[j][i] + q[j][i])) / 2 for j in range(n)] for i in range(n)]
    out = []
    for b in range(len(x)):
        rows = []
        for i in range(n):
            acc = list(p["bias"])
            for j in range(n):
                h = xw(x[b][j], p["W"][0] if j == i else p["W"][1])
                axpy(acc, a[i][j], [p["M"][j][d] * h[d] for d in range(COUT)])
            rows.append(acc)
        out.append(rows)
    return out


REFERENCES = {
    "vanilla": ref_vanilla,
    "dc_vanilla": ref_dc_vanilla,
    "preagg": ref_preagg,
    "dc_preagg": lambda a, p, x: ref_preagg(a, p, x, decoupled=True),
    "postagg": ref_postagg,
    "dc_postagg": lambda a, p, x: ref_postagg(a, p, x, decoupled=True),
    "convst": ref_convst,
    "nosharing": ref_nosharing,
    "semantic": ref_semantic,
    "modulated": ref_modulated,
}


def test_every_variant_has_a_reference():
    assert set(REFERENCES) == set(GCONV_VARIANTS)


@pytest.mark.parametrize("name", sorted(GCONV_VARIANTS))
def test_variant_matches_loop_formula(name):
    adj = tiny_adj()
    assert not torch.equal(adj, adj.t())            # the test graph must expose transposes
    conv = hand_set(build_gconv(name, CIN, COUT, adj))
    x = torch.sin(torch.arange(BATCH * 4 * CIN, dtype=torch.float32) * 1.3).view(BATCH, 4, CIN)
    params = {k: v.detach().double().tolist() for k, v in conv.named_parameters()}
    expected = torch.tensor(REFERENCES[name](adj.double().tolist(), params, x.double().tolist()),
                            dtype=torch.float64)
    got = conv(x)
    assert got.shape == (BATCH, 4, COUT)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)
    # the node-major fast path is the same function
    torch.testing.assert_close(conv.forward_node_major(x.transpose(0, 1).contiguous()).transpose(0, 1),
                               got, rtol=1e-6, atol=1e-6)


# --- a few fully hand-computed numbers (scalar features) ------------------------------------

PATH3 = [(0, 1), (1, 2)]        # Â rows: [1/2, 1/2, 0], [1/3, 1/3, 1/3], [0, 1/2, 1/2]


def scalar_conv(name, edges, n, **values):
    conv = build_gconv(name, 1, 1, adjacency_from_edges(n, edges))
    with torch.no_grad():
        conv.bias.zero_()
        for key, val in values.items():
            getattr(conv, key).copy_(torch.tensor(val, dtype=torch.float32).view_as(getattr(conv, key)))
    return conv


def run_scalar(conv, xs):
    return conv(torch.tensor(xs, dtype=torch.float32).view(1, -1, 1)).view(-1).tolist()


def test_vanilla_by_hand():
    conv = scalar_conv("vanilla", [(0, 1)], 2, W=[2.0], bias=[0.5])
    assert run_scalar(conv, [1, 3]) == pytest.approx([4.5, 4.5])          # 0.5*(2+6) + 0.5


def test_dc_preagg_uses_source_weights_by_hand():
    conv = scalar_conv("dc_preagg", [(0, 1)], 2, W=[[2, 5], [7, 11]])
    # y0 = .5*1*W0[0] + .5*3*W1[1];  y1 = .5*3*W0[1] + .5*1*W1[0]
    assert run_scalar(conv, [1, 3]) == pytest.approx([17.5, 11.0])


def test_dc_postagg_uses_destination_weights_by_hand():
    conv = scalar_conv("dc_postagg", [(0, 1)], 2, W=[[2, 5], [7, 11]])
    # y0 = .5*1*W0[0] + .5*3*W1[0];  y1 = .5*3*W0[1] + .5*1*W1[1]
    assert run_scalar(conv, [1, 3]) == pytest.approx([11.5, 13.0])


def test_convst_triangles_by_hand():
    conv = scalar_conv("convst", PATH3, 3, W=[1, 10, 100])
    # y1 = (1/3)(3*1 + 5*10 [j>i] + 1*100 [j<i])
    assert run_scalar(conv, [1, 3, 5]) == pytest.approx([15.5, 51.0, 152.5])


def test_nosharing_reads_adjacency_transposed_by_hand():
    conv = scalar_conv("nosharing", PATH3, 3, W=[1.0] * 9)
    # y0 = Â[0,0] x0 + Â[1,0] x1 = 1/2 + 3/3 (the untransposed Â[0,1] would give 2.0)
    assert run_scalar(conv, [1, 3, 5])[0] == pytest.approx(1.5)


def test_modulated_symmetrises_offset_by_hand():
    conv = scalar_conv("modulated", [(0, 1)], 2, W=[1, 1], M=[1, 1], Q=[[0, 0.2], [0, 0]])
    # Ã = [[.5, .7], [.5, .5]] -> symmetric [[.5, .6], [.6, .5]]
    assert run_scalar(conv, [1, 3]) == pytest.approx([2.3, 2.1])


def test_semantic_softmax_by_hand():
    conv = scalar_conv("semantic", PATH3, 3, W=[1, 2], e=[0, math.log(3), 0, 0, 0, 0, 0])
    # row 0: softmax(0, ln 3) = (1/4, 3/4); y0 = 1/4*1*1 + 3/4*3*2
    assert run_scalar(conv, [1, 3, 5])[0] == pytest.approx(4.75)


# --- initialisation, interface, errors ------------------------------------------------------

def test_modulated_initialisation():
    conv = ModulatedGraphConv(4, 5, tiny_adj())
    assert torch.equal(conv.M, torch.ones(4, 5))
    assert torch.equal(conv.Q, torch.full((4, 4), 1e-6))


@pytest.mark.parametrize("name", sorted(GCONV_VARIANTS))
def test_gradients_reach_every_parameter(name):
    torch.manual_seed(0)
    conv = build_gconv(name, CIN, COUT, tiny_adj())
    conv(torch.randn(BATCH, 4, CIN)).pow(2).sum().backward()
    for pname, p in conv.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError) as err:
        build_gconv("dc_prefagg", 2, 2, tiny_adj())
    for name in GCONV_VARIANTS:
        assert name in str(err.value)


def test_wrong_node_count_is_a_clear_error():
    conv = build_gconv("dc_preagg", CIN, COUT, tiny_adj())
    with pytest.raises(ValueError, match="N=4"):
        conv(torch.zeros(1, 5, CIN))


def test_adjacency_is_not_saved_in_checkpoints():
    for name in GCONV_VARIANTS:
        keys = set(build_gconv(name, CIN, COUT, tiny_adj()).state_dict())
        assert keys == {n for n, _ in build_gconv(name, CIN, COUT, tiny_adj()).named_parameters()}
