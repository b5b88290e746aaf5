"""The `branchwork` command line. `main` is the console script (`launch.py`): a warm process
runs the command when one is up, else this process does (`entry.py`)."""

from branchwork.cli.launch import main

__all__ = ["main"]
