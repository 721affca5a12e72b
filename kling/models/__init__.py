"""Models: one file per model, sizes as one registry (kling.models.registry)."""
