"""A tqdm bar on a terminal (or when asked); nothing otherwise (the caller logs lines)."""
from __future__ import annotations

import sys
from typing import Union


class Progress:
    def __init__(self, total: int, initial: int, enabled: Union[bool, str], is_main: bool, label: str,
                 unit: str = "sample"):
        """`enabled`: trainer.progress_bar, auto (when stderr is a tty) or a bool."""
        use_bar = is_main and (sys.stderr.isatty() if enabled == "auto" else bool(enabled))
        self.bar = None
        if use_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit=unit, unit_scale=True, desc=label,
                            dynamic_ncols=True, leave=False)

    def update(self, n: int, loss: float | None = None) -> None:
        if self.bar is not None:
            self.bar.update(n)
            if loss is not None:
                self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
