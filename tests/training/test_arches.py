"""dlrm/arches.py: the sparse arch as a view and the flat interaction, against TorchRec's."""
from __future__ import annotations

import copy

import pytest
import torch
from torchrec.models.dlrm import InteractionArch, SparseArch
from torchrec.modules.embedding_configs import EmbeddingBagConfig
from torchrec.modules.embedding_modules import EmbeddingBagCollection
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor, KeyedTensor

from dlrm.arches import FlatInteractionArch, ViewSparseArch

CARDINALITIES = (50, 70, 90, 110)
DIM = 8


def _collection(order: tuple[int, ...] = (0, 1, 2, 3)) -> EmbeddingBagCollection:
    """Tables in `order`: the arch's features are the collection's, in the collection's order."""
    torch.manual_seed(0)
    return EmbeddingBagCollection(tables=[
        EmbeddingBagConfig(name=f"t{f}", embedding_dim=DIM, num_embeddings=CARDINALITIES[f], feature_names=[f"f{f}"])
        for f in order])


def _features(n: int = 32) -> KeyedJaggedTensor:
    g = torch.Generator().manual_seed(1)
    lengths = torch.randint(0, 3, (4 * n,), generator=g, dtype=torch.int32)  # multi-hot, some empty
    ids = torch.cat([torch.randint(0, CARDINALITIES[f], (int(lengths[f * n:(f + 1) * n].sum()),), generator=g)
                     for f in range(4)])
    return KeyedJaggedTensor(keys=[f"f{f}" for f in range(4)], values=ids, lengths=lengths)


def _out_and_table_grads(arch, features, weights):
    out = arch(features)
    (out * weights).sum().backward()
    return out, [p.grad.clone() for p in arch.parameters()]


def _reversed_output(ebc: EmbeddingBagCollection) -> EmbeddingBagCollection:
    """The collection with its output features in reverse order (as a sharding might return them)."""
    forward = ebc.forward

    def reversed_forward(features):
        kt = forward(features)
        keys = kt.keys()[::-1]
        parts = kt.to_dict()
        return KeyedTensor(keys=keys, length_per_key=[DIM] * len(keys), values=torch.cat([parts[k] for k in keys], 1))
    ebc.forward = reversed_forward
    return ebc


@pytest.mark.parametrize("output", ["in order", "reversed"])
def test_the_sparse_arch_view_has_torchrecs_values_and_gradients(output):
    ebc = _collection((2, 0, 3, 1))
    copies = [copy.deepcopy(ebc) for _ in range(2)]
    if output == "reversed":  # not the collection's order: the arch reorders, as TorchRec's does
        copies = [_reversed_output(c) for c in copies]
    ours, theirs = ViewSparseArch(copies[0]), SparseArch(copies[1])
    features = _features()
    weights = torch.randn(32, 4, DIM)
    (a, ga), (b, gb) = _out_and_table_grads(ours, features, weights), _out_and_table_grads(theirs, features, weights)
    assert a.shape == (32, 4, DIM) and torch.equal(a, b)
    assert len(ga) == 4 and all(torch.equal(x, y) for x, y in zip(ga, gb))
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_the_sparse_arch_is_a_view_of_the_collections_output_not_a_copy():
    arch = ViewSparseArch(_collection())
    seen = {}
    arch.embedding_bag_collection.register_forward_hook(lambda m, i, out: seen.setdefault("kt", out))
    out = arch(_features())
    assert out.untyped_storage().data_ptr() == seen["kt"].values().untyped_storage().data_ptr()


def test_the_flat_interaction_has_torchrecs_values_and_gradients():
    f, batch = 5, 16
    g = torch.Generator().manual_seed(2)
    dense0, sparse0 = torch.randn(batch, DIM, generator=g), torch.randn(batch, f, DIM, generator=g)
    weights = torch.randn(batch, DIM + f * (f + 1) // 2, generator=g)
    results = []
    for arch in (FlatInteractionArch(f), InteractionArch(f)):
        dense, sparse = dense0.clone().requires_grad_(), sparse0.clone().requires_grad_()
        out = arch(dense, sparse)
        (out * weights).sum().backward()
        results.append((out, dense.grad, sparse.grad))
    assert all(torch.equal(a, b) for a, b in zip(*results))
