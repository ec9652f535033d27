"""Evaluation: metrics (metrics.py), plots as PNG (plots.py) and the self-contained HTML report
(report.py). Import the submodules directly; this package imports nothing heavy."""
