"""The benchmark's comparison: a plain-PyTorch DLRM of the harness's shapes.

One nn.EmbeddingBag per table (sum, sparse gradients), TorchRec's MLP layout (ReLU after
every dense-arch layer and every over-arch layer but the last) and its interaction:
for model=dlrm the dot interaction (bmm of the (F+1) x D matrix, the strict upper
triangle taken as `Z[:, li, lj]` -- as the reference DLRM (facebookresearch/dlrm) and
TorchRec's InteractionArch do -- concatenated with the dense output); for model=dcn
TorchRec's low-rank DCN-v2 cross net on the flattened (F+1) x D matrix,
x_{l+1} = x_0 * (W (V x_l) + b) + x_l.  The dense work is thus the harness's, op for
op; the two differ in the embeddings, their optimizer and the runtime around them.
torch.optim.Adagrad steps the sparse embedding gradients and the dense parameters.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


class BaselineDLRM(nn.Module):
    def __init__(self, shape, device: torch.device):
        super().__init__()
        d = shape.embedding_dim
        self.tables = nn.ModuleList(
            nn.EmbeddingBag(c, d, mode="sum", sparse=True, device=device) for c in shape.cardinalities)
        layers: list[nn.Module] = []
        n = shape.num_dense_features
        for size in shape.dense_arch_layer_sizes:
            layers += [nn.Linear(n, size, device=device), nn.ReLU()]
            n = size
        self.dense_arch = nn.Sequential(*layers)
        f1 = shape.num_sparse_features + 1
        self.dcn = shape.name == "dcn"
        if self.dcn:
            n, r = f1 * d, shape.dcn_low_rank_dim
            self.cross_w = nn.ParameterList(nn.init.xavier_normal_(torch.empty(n, r, device=device))
                                            for _ in range(shape.dcn_num_layers))
            self.cross_v = nn.ParameterList(nn.init.xavier_normal_(torch.empty(r, n, device=device))
                                            for _ in range(shape.dcn_num_layers))
            self.cross_b = nn.ParameterList(torch.zeros(n, device=device) for _ in range(shape.dcn_num_layers))
        else:
            n = d + f1 * (f1 - 1) // 2
            rows, cols = torch.triu_indices(f1, f1, offset=1, device=device)
            self.register_buffer("triu_rows", rows, persistent=False)
            self.register_buffer("triu_cols", cols, persistent=False)
        layers = []
        for size in shape.over_arch_layer_sizes[:-1]:
            layers += [nn.Linear(n, size, device=device), nn.ReLU()]
            n = size
        layers.append(nn.Linear(n, shape.over_arch_layer_sizes[-1], device=device))
        self.over_arch = nn.Sequential(*layers)
        self.loss_fn = nn.BCEWithLogitsLoss()

    def forward(self, dense: torch.Tensor, sparse_fm: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """`sparse_fm`: [F, B] ids, feature-major, one id per (feature, sample)."""
        x_dense = self.dense_arch(dense)
        pooled = [table(sparse_fm[f].unsqueeze(1)) for f, table in enumerate(self.tables)]
        x = torch.stack([x_dense] + pooled, dim=1)  # [B, F+1, D]
        if self.dcn:
            x0 = x.flatten(1)
            z = x0
            for w, v, b in zip(self.cross_w, self.cross_v, self.cross_b):
                z = x0 * (F.linear(F.linear(z, v), w) + b) + z
        else:
            z = torch.cat([x_dense, torch.bmm(x, x.transpose(1, 2))[:, self.triu_rows, self.triu_cols]], dim=1)
        logits = self.over_arch(z).squeeze(1)
        return self.loss_fn(logits, labels)


@dataclass
class Baseline:
    model: BaselineDLRM
    optimizers: list

    def step(self, batch) -> torch.Tensor:
        loss = self.model(*batch)
        loss.backward()
        for opt in self.optimizers:
            opt.step()
        for opt in self.optimizers:
            opt.zero_grad()
        return loss


def build_baseline(shape, trainer_cfg, device: torch.device) -> Baseline:
    model = BaselineDLRM(shape, device)
    dense = [p for name, p in model.named_parameters() if not name.startswith("tables.")]
    emb = torch.optim.Adagrad(list(model.tables.parameters()), lr=float(trainer_cfg.embedding_lr), eps=1e-8)
    dense_opt = torch.optim.Adagrad(dense, lr=float(trainer_cfg.dense_lr))
    return Baseline(model, [emb, dense_opt])


def baseline_batch(batch, num_sparse_features: int) -> tuple:
    """The harness's own batch (a torchrec Batch from `Trainable.train_batch`) as the
    baseline's inputs: its KJT holds one id per (feature, sample), feature-major."""
    values = batch.sparse_features.values()
    return batch.dense_features, values.view(num_sparse_features, -1), batch.labels
