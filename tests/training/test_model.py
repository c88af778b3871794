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
