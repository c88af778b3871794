"""The command line: `python -m dlrm.data.criteo preprocess --raw RAW --out OUT --dataset kaggle|1tb`.

Exit codes: 0 done; 1 a `CriteoPreprocessError` (printed as `error: ...`, no traceback);
2 a usage error (argparse).
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from dlrm.data.criteo.errors import CriteoPreprocessError

PREPROCESS_HELP = "Criteo TSV (train.txt, or day_0 ... day_23, plain or gzip) -> per-day .npy arrays"


def _add_preprocess_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--raw", required=True,
                   help="directory holding train.txt (kaggle) or day_0 ... day_23 (1tb), plain or gzip")
    p.add_argument("--out", required=True, help="output directory (resumable: finished days are skipped)")
    p.add_argument("--dataset", required=True, choices=["kaggle", "1tb", "criteo_kaggle", "criteo_1tb"])
    p.add_argument("--chunk-lines", type=int, default=1 << 14,
                   help="lines parsed at once per worker; a worker's peak memory is ~30 MB + ~4 kB per "
                        "chunk line (default 16384: ~100 MB, and the chunk's arrays stay in the CPU cache; "
                        "larger chunks are slower)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes, one day at a time each (default: min(days, CPUs, 8))")
    p.add_argument("--skip-bad-lines", action="store_true",
                   help="skip and count malformed lines instead of stopping at the first one")
    p.add_argument("--num-embeddings-per-feature", nargs="+", default=None, metavar="N",
                   help="26 per-feature table sizes (ids are taken modulo these); "
                        "default: the dataset's standard sizes")
    p.add_argument("--max-ind-range", type=int, default=None, help="cap every table size at N")
    p.add_argument("--frequency-threshold", type=int, default=0,
                   help="map ids seen fewer than T times in the training days to 0 (0 = off, max 255)")
    p.add_argument("--days", nargs="+", type=int, default=None,
                   help="1tb only: the days to use (default 0..23); the last is held out for eval")


def build_parser(prog: str = "python -m dlrm.data.criteo") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Criteo click logs (Kaggle, 1TB); see docs/CRITEO.md")
    sub = p.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    _add_preprocess_options(sub.add_parser("preprocess", help=PREPROCESS_HELP, description=(
        PREPROCESS_HELP + "; streamed with bounded memory, resumable")))
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from dlrm.data.criteo.preprocess import preprocess

    nepf = None
    if args.num_embeddings_per_feature:
        nepf = [int(x) for tok in args.num_embeddings_per_feature for x in str(tok).split(",") if x]
    try:
        preprocess(args.raw, args.out, args.dataset, chunk_lines=args.chunk_lines, workers=args.workers,
                   skip_bad_lines=args.skip_bad_lines, num_embeddings_per_feature=nepf,
                   max_ind_range=args.max_ind_range, frequency_threshold=args.frequency_threshold,
                   days=args.days)
    except CriteoPreprocessError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
