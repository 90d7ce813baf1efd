"""The ``nbgov`` command line: one module per command group, over the core's Python API."""

from nbgov.cli.main import main

__all__ = ["main"]
