"""TorchRec's DLRM sparse arch and dot interaction, with fewer copies on the training step.

`build_model` puts these in place of TorchRec's own modules.  They compute TorchRec's values
and gradients bit for bit, and hold no parameter or persistent buffer of their own, so the
module tree's state_dict (and every checkpoint) is TorchRec's.
"""
from __future__ import annotations

from typing import Optional

import torch
from torchrec.models.dlrm import InteractionArch, SparseArch


class ViewSparseArch(SparseArch):
    """TorchRec's SparseArch returns `torch.cat([kt.to_dict()[f] for f in features]).reshape(B, F, D)`.
    When the collection already returns its features in that order (on one rank, and for every
    sharding whose output TorchRec puts back in the collection's order), that is a copy of
    `kt.values()`, and its backward splits the gradient per feature and concatenates it back.
    A view of `kt.values()` is the same tensor without either copy.  Under symbolic tracing
    (TrainPipelineSparseDist traces the model) the order is not known: TorchRec's path."""

    def forward(self, features) -> torch.Tensor:
        kt = self.embedding_bag_collection(features)
        if isinstance(kt, torch.fx.Proxy) or kt.keys() != self.sparse_feature_names:  # TorchRec's reordering copy
            sparse = kt.to_dict()
            return torch.cat([sparse[name] for name in self.sparse_feature_names], dim=1).reshape(-1, self.F, self.D)
        return kt.values().reshape(-1, self.F, self.D)


class FlatInteractionArch(InteractionArch):
    """TorchRec's dot interaction with the upper triangle taken by one index_select over the
    flattened (F+1)^2 products instead of `interactions[:, rows, cols]`: the same values and
    gradients (each product is picked once), but the backward is an index_add rather than an
    accumulating index_put, about 2x faster on CPU."""

    def __init__(self, num_sparse_features: int, device: Optional[torch.device] = None) -> None:
        super().__init__(num_sparse_features)
        f1 = num_sparse_features + 1
        rows, cols = torch.triu_indices(f1, f1, offset=1, device=device)
        self.register_buffer("triu_flat", rows * f1 + cols, persistent=False)

    def forward(self, dense_features: torch.Tensor, sparse_features: torch.Tensor) -> torch.Tensor:
        if self.F <= 0:
            return dense_features
        combined = torch.cat((dense_features.unsqueeze(1), sparse_features), dim=1)
        interactions = torch.bmm(combined, combined.transpose(1, 2))
        return torch.cat((dense_features, interactions.flatten(1).index_select(1, self.triu_flat)), dim=1)
