"""Code the tests share, never collected as tests: ``support.helpers`` (ledgers, policies, the CLI
in a subprocess or in this process, waiting), ``support.ipython`` (the IPython shell notebook tests
run cells in), ``support.bundle_helpers`` (evidence bundles), ``support.svg_helpers``,
``support.browser`` (JupyterLab / Notebook 7 with headless Chromium), ``support.pg_server`` (a
throwaway PostgreSQL server, registered as a plugin by conftest.py) and ``support.scheduling`` (how
pytest-xdist hands tests to its workers: groups sharing a setup kept together, long tests first).

tests/ is on sys.path through pytest's ``pythonpath`` setting, so tests import ``support.<module>``.
The scripts in tests/workers/ run in processes of their own and import none of it.
"""
