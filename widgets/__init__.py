"""ipywidgets panels for nbgov (installed as ``nbgov.widgets``).

Widgets are views over core functions only: no governance rule is implemented here.

    from nbgov.widgets import GovernancePanel
    GovernancePanel("hmda_denial@2")      # or, in a notebook with nbgov loaded: %nbgov panel
"""

from nbgov.widgets.panel import GovernancePanel

__all__ = ["GovernancePanel"]
