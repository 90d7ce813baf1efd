"""The statistics behind bias and drift tests: pure functions over arrays and frames.

:mod:`nbgov.stats.fairness` (group rates, disparities, significance tests) and
:mod:`nbgov.stats.drift` (KS, chi-square, Wasserstein, Jensen-Shannon, PSI) compute; they record
nothing. Their reports are plain dataclasses, in :mod:`nbgov.stats.fairness_report` and
:mod:`nbgov.stats.drift_report`. :mod:`nbgov.governance.evaluations` records and judges their
results.
"""
