"""Local (embedded) mode: the same pipeline on one machine with no AWS account and no Docker.

A directory stands in for the bucket (``bucket.py``), SQLite for SageMaker Experiments and the
execution history (``experiment_store.py``, ``executions.py``), and ``asl/`` runs the real state
machine file with local service integrations (``integrations.py``) behind it.
"""
