"""`python -m dlrm.train`: the command keeps its name; the app it starts is runner/main.py.
(The one module of `dlrm` that reaches the app: the training library never imports Hydra.)"""
from runner.main import cli

if __name__ == "__main__":
    cli()
