"""Generation: pipelines that read top to bottom as numbered steps (kling.generate.avatar_pipeline)."""
