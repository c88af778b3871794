"""Eval metrics from TorchRec's metric functions: log loss, NE, AUC, calibration.

NE (He et al. 2014) = mean log loss / entropy of the set's average CTR.  The standard
error of NE is that of the mean per-sample log loss divided by the same entropy: it
says how finely one eval set resolves a model (paired differences between two models on
the same set are resolved more finely still).
"""
from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torchrec.metrics.auc import compute_auc
from torchrec.metrics.calibration import compute_calibration
from torchrec.metrics.ne import compute_cross_entropy, compute_ne

_ETA = 1e-12
_LN2 = math.log(2.0)


def eval_metrics(probabilities: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    p = probabilities.double().flatten()
    y = labels.double().flatten()
    w = torch.ones_like(y)
    ce_bits = compute_cross_entropy(y, p.clone(), w, _ETA)  # per-sample, in bits
    n = float(y.numel())
    pos = y.sum()
    ne = compute_ne(ce_bits.sum(), w.sum(), pos, n - pos, _ETA)
    mean_logloss_bits = ce_bits.mean()
    entropy_bits = float(ce_bits.sum() / ne) / n  # the normaliser compute_ne used, per sample
    ne_stderr = float(ce_bits.std() / math.sqrt(n)) / entropy_bits
    auc = compute_auc(1, [p.view(1, -1)], [y.view(1, -1)], [w.view(1, -1)])
    return {
        "eval_logloss": float(mean_logloss_bits) * _LN2,  # nats, like the Bayes floor
        "eval_ne": float(ne),
        "eval_ne_stderr": ne_stderr,
        "eval_auc": float(auc[0]),
        "eval_calibration": float(compute_calibration(p.sum(), y.sum())),
        "eval_ctr": float(pos / n),
    }


def evaluate(model, batches: list, info) -> dict[str, float]:
    """Eval metrics of `model` on this rank's eval batches, gathered over every rank."""
    model.eval()
    probs, labels = [], []
    with torch.no_grad():
        for batch in batches:
            _, (_, logits, y) = model(batch)
            probs.append(torch.sigmoid(logits.float()))
            labels.append(y.float())
    model.train()
    p, y = torch.cat(probs), torch.cat(labels)
    if info.world_size > 1:  # every rank holds an equal share: gather them all (on the device: NCCL-safe)
        gathered_p = [torch.empty_like(p) for _ in range(info.world_size)]
        gathered_y = [torch.empty_like(y) for _ in range(info.world_size)]
        dist.all_gather(gathered_p, p)
        dist.all_gather(gathered_y, y)
        p, y = torch.cat(gathered_p), torch.cat(gathered_y)
    return eval_metrics(p.cpu(), y.cpu())
