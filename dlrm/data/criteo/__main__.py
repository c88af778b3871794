"""`python -m dlrm.data.criteo preprocess ...` (see cli.py)."""
import sys

from dlrm.data.criteo.cli import main

if __name__ == "__main__":
    sys.exit(main())
