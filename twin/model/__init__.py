"""The predictive violation model (issue 21): features as of a date, a calibrated gradient-boosting model
with per-establishment reasons, the backtest on rolling time splits, the fairness audit, the model registry
and the stored visit plans. docs/algorithm-register.md describes it."""
