"""One revision per schema change, numbered in order: 0001_submission.py, 0002_..."""
