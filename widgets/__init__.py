"""ipywidgets panels for nbgov (installed as ``nbgov.widgets``).

Widgets are views over core functions only: no governance rule is implemented here.
"""
