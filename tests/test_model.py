"""Parameter counts and FLOPs against the real modules and a real FLOP counter."""
from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from dlrm.model import ModelShape, build_model, feature_name, flops_per_sample, layer_sizes, param_counts


def shape(name: str, dim: int = 8, width: int = 32, depth: int = 3, dense_arch_output: str = "relu") -> ModelShape:
    dense, over = layer_sizes(dim, width, depth)
    return ModelShape(name=name, embedding_dim=dim, cardinalities=(50, 70, 90, 110), num_dense_features=13,
                      dense_arch_layer_sizes=tuple(dense), over_arch_layer_sizes=tuple(over),
                      dcn_num_layers=2, dcn_low_rank_dim=4, dense_arch_output=dense_arch_output)


def test_layer_sizes_follow_width_and_depth():
    assert layer_sizes(16, 64, 2) == ([64, 16], [64, 1])
    assert layer_sizes(4, 128, 3) == ([128, 128, 4], [128, 128, 1])


CASES = [("dlrm", "relu"), ("dcn", "relu"), ("dlrm", "linear"), ("dcn", "linear")]


@pytest.mark.parametrize("name,output", CASES)
def test_param_counts_match_the_torchrec_module(name, output):
    s = shape(name, dense_arch_output=output)
    model = build_model(s, torch.device("cpu"), table_device=torch.device("cpu"))
    emb = sum(p.numel() for n, p in model.named_parameters() if "embedding_bags" in n)
    dense = sum(p.numel() for n, p in model.named_parameters() if "embedding_bags" not in n)
    counts = param_counts(s)
    assert counts["params_embedding"] == emb == sum(s.cardinalities) * s.embedding_dim
    assert counts["params_dense"] == dense
    assert counts["params_total"] == emb + dense


@pytest.mark.parametrize("name,output", CASES)
def test_flops_formula_matches_torch_flop_counter(name, output):
    s = shape(name, dense_arch_output=output)
    model = build_model(s, torch.device("cpu"), table_device=torch.device("cpu"))
    batch = 64
    ids = torch.randint(0, 50, (len(s.cardinalities) * batch,))
    kjt = KeyedJaggedTensor(keys=[feature_name(f) for f in range(len(s.cardinalities))], values=ids,
                            lengths=torch.ones(len(ids), dtype=torch.int32))
    dense = torch.randn(batch, 13)
    counter = FlopCounterMode(display=False)
    with counter:
        model(dense, kjt).sum().backward()
    measured = counter.get_total_flops() / batch
    # The counter sees matmuls only, so add what it cannot see: the gradient w.r.t. the raw
    # dense input (which autograd skips; the formula counts every layer alike) and DCN's
    # elementwise x0 * (.) + x terms (3 n per layer forward, x3 with backward).
    unseen = 2 * s.num_dense_features * s.dense_arch_layer_sizes[0]
    if name == "dcn":
        unseen += 3 * s.dcn_num_layers * 3 * (len(s.cardinalities) + 1) * s.embedding_dim
    assert flops_per_sample(s) == measured + unseen


@pytest.mark.parametrize("depth", [2, 3])
def test_a_linear_dense_arch_output_drops_only_the_last_relu(depth):
    torch.manual_seed(0)
    relu = build_model(shape("dlrm", depth=depth), torch.device("cpu"), table_device=torch.device("cpu")).dense_arch
    torch.manual_seed(0)
    linear = build_model(shape("dlrm", depth=depth, dense_arch_output="linear"), torch.device("cpu"),
                         table_device=torch.device("cpu")).dense_arch
    linear.load_state_dict(dict(zip(linear.state_dict(), relu.state_dict().values())))  # the same weights
    x = torch.randn(256, 13)
    out_relu, out_linear = relu(x), linear(x)
    assert (out_relu >= 0).all() and (out_linear < 0).any()  # TorchRec's DenseArch ReLUs its output
    assert torch.equal(out_relu, torch.relu(out_linear))  # and that is the only difference


@pytest.mark.parametrize("name", ["dlrm", "dcn"])
def test_the_viewed_sparse_arch_gives_torchrecs_values_and_gradients(name):
    """The sparse arch views the pooled output instead of copying it: the same B x F x D as
    TorchRec's SparseArch, with the same gradients, in feature order and in any other."""
    from torchrec.models.dlrm import SparseArch

    from dlrm.model import ViewSparseArch

    torch.manual_seed(0)
    model = build_model(shape(name), torch.device("cpu"), table_device=torch.device("cpu"))
    assert isinstance(model.sparse_arch, ViewSparseArch)
    ebc = model.sparse_arch.embedding_bag_collection
    batch, keys = 32, [feature_name(f) for f in range(4)]
    ids = torch.randint(0, 50, (4 * batch,))
    kjt = KeyedJaggedTensor(keys=keys, values=ids, lengths=torch.ones(len(ids), dtype=torch.int32))
    ours, theirs = ViewSparseArch(ebc), SparseArch(ebc)
    weights = [p for n, p in ebc.named_parameters()]
    grads = []
    for arch in (ours, theirs):
        out = arch(kjt)
        (out * torch.arange(out.numel(), dtype=out.dtype).reshape(out.shape)).sum().backward()
        grads.append([w.grad.clone() for w in weights])
        for w in weights:
            w.grad = None
        if arch is ours:
            first = out.detach()
    assert torch.equal(first, theirs(kjt).detach()) and first.shape == (batch, 4, 8)
    assert all(torch.equal(a, b) for a, b in zip(*grads))
    ours._sparse_feature_names = list(reversed(keys))  # another order than the pooled output's
    theirs._sparse_feature_names = list(reversed(keys))
    assert torch.equal(ours(kjt), theirs(kjt))
