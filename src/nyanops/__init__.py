"""nyanops: an MLOps training pipeline for telling particular cats apart.

``nyanops.core`` is the shared core used by both Lambda handlers and the local runner;
``nyanops.local`` holds the local (embedded) adapters, the ASL executor and the CLI.
"""

__version__ = "0.1.0"
