"""Evaluation: metrics, dataset readers, peer trackers, the benchmark harness."""
