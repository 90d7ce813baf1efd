"""``python -m nbgov``: the same as the ``nbgov`` command."""

from nbgov.cli.main import main

main()
