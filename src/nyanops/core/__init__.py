"""The shared core: one source of truth for the manifest, the storage layout, naming, dataset
validation, execution-input building and the best-model decision. Pure functions plus small
adapter interfaces; nothing here knows whether it runs on AWS or locally."""
