"""trainer.dense_precision: the dense part under autocast, fp32 as before, recorded and refused."""
from __future__ import annotations

import copy

import pytest
import torch
from torchrec.datasets.utils import Batch
from torchrec.models.dlrm import DLRMTrain
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from dlrm.model import ModelShape, PrecisionDLRMTrain, build_model, feature_name, layer_sizes
from harness import run_job, typed


def _model_and_batch(n: int = 64):
    dense, over = layer_sizes(8, 32, 3)
    shape = ModelShape(name="dlrm", embedding_dim=8, cardinalities=(50, 70, 90, 110), num_dense_features=13,
                       dense_arch_layer_sizes=tuple(dense), over_arch_layer_sizes=tuple(over),
                       dcn_num_layers=2, dcn_low_rank_dim=4, dense_arch_output="linear")
    torch.manual_seed(0)
    model = build_model(shape, torch.device("cpu"), table_device=torch.device("cpu"))
    ids = torch.cat([torch.randint(0, c, (n,)) for c in shape.cardinalities])
    kjt = KeyedJaggedTensor(keys=[feature_name(f) for f in range(4)], values=ids,
                            lengths=torch.ones(4 * n, dtype=torch.int32))
    batch = Batch(dense_features=torch.randn(n, 13), sparse_features=kjt, labels=torch.randint(0, 2, (n,)).float())
    return model, batch


def _loss_and_grads(train, batch):
    loss, (_, logits, _) = train(batch)
    loss.backward()
    return loss.detach(), logits, {n: p.grad.clone() for n, p in train.named_parameters() if p.grad is not None}


def test_fp32_is_torchrecs_dlrmtrain_op_for_op_and_keeps_its_state_dict_keys():
    model, batch = _model_and_batch()
    ours = PrecisionDLRMTrain(copy.deepcopy(model), "fp32")
    theirs = DLRMTrain(copy.deepcopy(model))
    a, b = _loss_and_grads(ours, batch), _loss_and_grads(theirs, batch)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[2].keys() == b[2].keys() and all(torch.equal(a[2][k], b[2][k]) for k in a[2])
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_bf16_runs_the_dense_part_in_bf16_and_hands_back_float32():
    model, batch = _model_and_batch()
    fp32 = _loss_and_grads(PrecisionDLRMTrain(copy.deepcopy(model), "fp32"), batch)
    bf16 = _loss_and_grads(PrecisionDLRMTrain(copy.deepcopy(model), "bf16"), batch)
    assert bf16[1].dtype == torch.float32 and bf16[0].dtype == torch.float32
    assert not torch.equal(bf16[1], fp32[1])  # the arithmetic did change...
    assert torch.allclose(bf16[1], fp32[1], atol=0.05)  # ...by bf16's rounding, not more
    assert all(g.dtype == torch.float32 for g in bf16[2].values())  # the params and their grads stay float32
    with pytest.raises(ValueError, match="fp32"):
        PrecisionDLRMTrain(model, "fp16")


def test_a_bad_precision_is_refused_by_name_before_any_work():
    from dlrm.config import ConfigError
    from dlrm.validate import validate

    with pytest.raises(ConfigError, match="trainer.dense_precision"):
        validate(typed(["trainer.dense_precision=fp16"]), 1, "cpu")


def test_the_precision_is_in_the_summary_and_keeps_runs_apart_in_the_analysis(tmp_path):
    from analysis.points import IDENTITY_FIELDS
    from analysis.runs import normalise

    base = ["data.num_train_samples=2048", "data.num_eval_samples=2048", "trainer.num_threads=1"]
    s = run_job(base + ["trainer.dense_precision=bf16"], tmp_path / "bf16")["summary"]
    assert s["status"] == "completed" and s["dense_precision"] == "bf16" and 0.5 < s["eval_ne"] < 1.5  # trained, finite
    assert "dense_precision" in IDENTITY_FIELDS  # a bf16 run is not a seed of the fp32 point
    old = {k: v for k, v in s.items() if k != "dense_precision"}
    assert normalise(old)["dense_precision"] == "fp32"  # a summary before the key trained in fp32
