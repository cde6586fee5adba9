"""The domain: windows, references, the evaluation of one window, the drift policy and the records
the store persists. Pure Python over the numbers in ``monitor.divergence``; it knows no database."""
