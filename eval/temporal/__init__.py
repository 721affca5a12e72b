"""The time axis: per-window metrics and their drift, cross-window consistency, transition smoothness, and
the one-decode evaluation of a system (``evaluate_system``)."""

from eval.temporal.drift import DriftFigure, DriftResult, drift_figure, evaluate_drift, window_values
from eval.temporal.transitions import score_transitions

__all__ = ["DriftFigure", "DriftResult", "drift_figure", "evaluate_drift", "score_transitions", "window_values"]
