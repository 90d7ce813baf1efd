"""``python -m nbgov``: the same as the ``nbgov`` command."""

from nbgov.cli import main

main()
