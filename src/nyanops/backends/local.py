"""The local side: a ``LocalPipeline`` over ``<root>/bucket`` and ``<root>/nyanops.db``."""

from __future__ import annotations

from pathlib import Path

from nyanops.core.experiments import ExperimentStore
from nyanops.core.ports import ObjectStore
from nyanops.local.progress import Progress
from nyanops.local.runner import LocalPipeline


class LocalBackend:
    kind = "local"

    def __init__(self, root: str | Path, verbose: bool = False) -> None:
        self.pipeline = LocalPipeline(Path(root), Progress(verbose=verbose))
        for name in self.pipeline.reap_orphans():
            print(f"note: execution {name} was left running by a process that is gone; marked INTERRUPTED")

    @property
    def store(self) -> ObjectStore:
        return self.pipeline.store

    @property
    def experiments(self) -> ExperimentStore:
        return self.pipeline.experiments

    def where(self) -> str:
        return f"local root {self.pipeline.root}"

    def close(self) -> None:
        self.pipeline.close()
