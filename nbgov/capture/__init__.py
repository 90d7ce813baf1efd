"""Capture: what a notebook session does, recorded as events as it runs.

The :class:`~nbgov.capture.recorder.Recorder` is one recording session; the library patches
(:mod:`~nbgov.capture.dataio`, :mod:`~nbgov.capture.sklearn`, installed by
:class:`~nbgov.capture.install.Capture`) report reads, writes, fits, predictions and metrics to it;
:mod:`~nbgov.capture.dataflow` follows values through a cell's names.
"""
