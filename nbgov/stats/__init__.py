"""The statistics behind bias and drift tests: pure functions over arrays and frames.

:mod:`nbgov.stats.fairness` (group rates, disparities, significance tests) and
:mod:`nbgov.stats.drift` (KS, chi-square, Wasserstein, Jensen-Shannon, PSI) compute; they record
nothing. :mod:`nbgov.governance.evaluations` records and judges their results.
"""
