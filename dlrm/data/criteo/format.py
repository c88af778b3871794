"""The Criteo formats: the raw TSV, the preprocessed per-day .npy layout, their file names.

Input: Criteo's TSV, one sample a line: label, 13 integer features, 26 categorical
features as (up to) 8 hex digits; any feature may be empty.  Kaggle's `train.txt`
(~45.8M lines, 7 days in time order) or the 1TB logs `day_0` ... `day_23` (plain or
gzip; gzip is detected by its magic bytes, so `day_0.gz` and `day_0` both work).

Output, per day `d`, in the layout TorchRec's `InMemoryBinaryCriteoIterDataPipe` reads
(`torchrec/datasets/criteo.py`):

    day_{d}_dense.npy   float32 [n, 13]  log(1 + max(x, 0)); empty -> 0
    day_{d}_sparse.npy  int32   [n, 26]  int(hex, 16) % num_embeddings[f]; empty -> 0
    day_{d}_labels.npy  int32   [n, 1]   0 / 1
    day_{d}.done        JSON completion marker (rows, source file and its identity, bad lines)
    metadata.json       written last: days, rows per day, split, sizes, threshold

Conventions (see docs/CRITEO.md):
- Empty categorical -> hex 0 -> id 0 (TorchRec's convention: `int(row[i] or "0", 16)`).
- Frequency threshold T: ids seen fewer than T times in the *training* days (after the
  modulo) map to bucket 0, shared with the empty value; ids of the eval day that never
  occur in training map there too.
- Kaggle: `train.txt` is split into 7 equal "days" in file order (the DLRM reference's
  convention; the first `total % 7` days get one extra line); days 0-5 train, day 6 is
  held out.  1TB: days 0-22 train, day 23 held out.  The eval set is the first half
  (ceil(n/2) rows) of the held-out day -- TorchRec's "val" stage; the second half is its
  "test" stage and is never read by training.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

# Same values as torchrec.datasets.criteo (checked by tests/criteo); not imported, because
# importing torchrec costs ~4 s and ~350 MB per worker process.
INT_FEATURE_COUNT = 13
CAT_FEATURE_COUNT = 26
NUM_FIELDS = 1 + INT_FEATURE_COUNT + CAT_FEATURE_COUNT
DEFAULT_INT_NAMES = [f"int_{i}" for i in range(INT_FEATURE_COUNT)]
DEFAULT_CAT_NAMES = [f"cat_{i}" for i in range(CAT_FEATURE_COUNT)]
FIELD_NAMES = ["label", *DEFAULT_INT_NAMES, *DEFAULT_CAT_NAMES]
EXPECTED_FORMAT = (f"one sample per line, ending in \\n (or \\r\\n): a 0/1 label, {INT_FEATURE_COUNT} integer "
                   f"and {CAT_FEATURE_COUNT} hex categorical features, tab-separated")

FORMAT_VERSION = 1
KAGGLE_DAYS = 7
TB_DAYS = 24
DATASETS = {"criteo_kaggle": "kaggle", "criteo_1tb": "1tb"}  # config name -> data set

# Per-feature table sizes used as the modulo.  Kaggle: the per-feature cardinalities of
# train.txt (TorchRec's DLRM example / the DLRM reference).  1TB: the MLPerf DLRM-v2
# sizes, i.e. the cardinalities capped at 40M (`--max-ind-range 40000000`).  Applied to
# the raw 32-bit hex ids they are a hash, as with TorchRec's `hashes=` option.
DEFAULT_NUM_EMBEDDINGS = {
    "kaggle": [
        1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593,
        3194, 27, 14992, 5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105,
        142572,
    ],
    "1tb": [
        40000000, 39060, 17295, 7424, 20265, 3, 7122, 1543, 63, 40000000, 3067956,
        405282, 10, 2209, 11938, 155, 4, 976, 14, 40000000, 40000000, 40000000, 590152,
        12973, 108, 36,
    ],
}
DOWNLOAD_URLS = {
    "kaggle": "https://ailab.criteo.com/ressources/ (Kaggle Display Advertising "
    "Challenge dataset, dac.tar.gz -> train.txt; also "
    "https://www.kaggle.com/c/criteo-display-ad-challenge/data)",
    "1tb": "https://ailab.criteo.com/download-criteo-1tb-click-logs-dataset/ (day_0.gz "
    "... day_23.gz; mirrored at https://huggingface.co/datasets/criteo/CriteoClickLogs)",
}

PAD = 32  # filler bytes before each chunk buffer, so that fixed-width windows never start before 0
# A valid Criteo line is at most ~500 bytes (and real ones ~250).  A file with no "\n" within
# MAX_LINE_BYTES (CR-only line ends, a binary file) is refused rather than buffered whole;
# the reader's per-line estimate is capped at MAX_LINE_ESTIMATE, so a chunk of long garbage
# lines costs at most that per chunk line.
MAX_LINE_BYTES = 1 << 20
MAX_LINE_ESTIMATE = 4 << 10

# ---------------------------------------------------------------- file names

FREQ_COUNTS_FILE = "freq_counts.npy"
ARGS_FILE = "preprocess_args.json"
METADATA_FILE = "metadata.json"
KAGGLE_SPLIT_FILE = "kaggle_split.json"


def day_files(out_dir: str, day: int) -> dict[str, str]:
    return {part: os.path.join(out_dir, f"day_{day}_{part}.npy") for part in ("dense", "sparse", "labels")}


def marker_path(out_dir: str, day: int) -> str:
    return os.path.join(out_dir, f"day_{day}.done")


def day_counts_path(out_dir: str, day: int) -> str:
    return os.path.join(out_dir, f"day_{day}_counts.npy")


def expected_files(dataset: str, days: Optional[Sequence[int]] = None) -> list[str]:
    """File names a complete preprocessed directory holds."""
    if days is None:
        days = range(KAGGLE_DAYS if dataset == "kaggle" else TB_DAYS)
    names = [METADATA_FILE]
    for d in days:
        names += [f"day_{d}_dense.npy", f"day_{d}_sparse.npy", f"day_{d}_labels.npy", f"day_{d}.done"]
    return names
