"""Hardware profiles for the cost model (analysis.cost): peaks with their sources, efficiencies.

The GPU peaks are the data sheets' (SXM parts, fp32 without tensor cores: the harness
trains in fp32 and PyTorch does not use TF32 for fp32 matmuls by default).  Their
efficiencies are assumed, not measured: a dense fp32 step of small MLPs reaches a modest
fraction of peak, an embedding lookup about half the memory bandwidth, an all-to-all about
half the link.  Calibrate them on runs made on that hardware (`--calibrate RUNS`) before
planning on the numbers; the report says which kind each profile is.

The CPU profile is one core of an AMD EPYC with AVX-512 at one thread: its peaks measured
there (float32 `torch.mm` of 2048 x 2048: scripts/bench_common.py; a tensor copy), its
efficiencies fitted to the demo's runs (two runs at a time, one thread each).
"""
from __future__ import annotations

from analysis.cost import Efficiency, Hardware

GB = 1e9
_NVLINK4 = 450 * GB  # per direction (900 GB/s total)
_NVLINK3 = 300 * GB
_IB_NDR = 50 * GB  # one 400 Gb/s port per GPU
_ASSUMED = Efficiency(dense=0.3, memory=0.5, network=0.5, step_seconds=1e-3)

PROFILES: dict[str, Hardware] = {h.name: h for h in (
    Hardware("a100", peak_flops_per_s=19.5e12, memory_bytes_per_s=2039 * GB, intra_node_bytes_per_s=_NVLINK3,
             inter_node_bytes_per_s=_IB_NDR / 2, memory_bytes=80 * GB, efficiency=_ASSUMED,
             source="NVIDIA A100 80GB SXM data sheet: 19.5 TFLOP/s fp32, 2,039 GB/s HBM2e, NVLink 600 GB/s; "
                    "HDR InfiniBand 200 Gb/s per GPU",
             calibration="assumed"),
    Hardware("h100", peak_flops_per_s=67e12, memory_bytes_per_s=3350 * GB, intra_node_bytes_per_s=_NVLINK4,
             inter_node_bytes_per_s=_IB_NDR, memory_bytes=80 * GB, efficiency=_ASSUMED,
             source="NVIDIA H100 SXM5 data sheet: 67 TFLOP/s fp32, 3.35 TB/s HBM3, NVLink 900 GB/s; "
                    "NDR InfiniBand 400 Gb/s per GPU",
             calibration="assumed"),
    Hardware("h200", peak_flops_per_s=67e12, memory_bytes_per_s=4800 * GB, intra_node_bytes_per_s=_NVLINK4,
             inter_node_bytes_per_s=_IB_NDR, memory_bytes=141 * GB, efficiency=_ASSUMED,
             source="NVIDIA H200 SXM data sheet: 67 TFLOP/s fp32, 4.8 TB/s HBM3e, 141 GB, NVLink 900 GB/s; "
                    "NDR InfiniBand 400 Gb/s per GPU",
             calibration="assumed"),
    Hardware("cpu", peak_flops_per_s=93e9, memory_bytes_per_s=30 * GB, intra_node_bytes_per_s=10 * GB,
             inter_node_bytes_per_s=1.25 * GB, memory_bytes=24 * GB,
             efficiency=Efficiency(dense=0.26, memory=0.65, network=0.5, step_seconds=3.1e-3),
             source="one core of an AMD EPYC (AVX-512), one thread: float32 mm 93 GFLOP/s, copy 30 GB/s "
                    "(measured); gloo over loopback 10 GB/s, 10 GbE across nodes (assumed); 24 GB",
             calibration="fitted to the demo's 56 runs (dense, memory, step; median error 5%); network assumed"),
)}


def profile(name: str) -> Hardware:
    if name not in PROFILES:
        raise ValueError(f"unknown hardware {name!r}: use one of {', '.join(PROFILES)}")
    return PROFILES[name]
