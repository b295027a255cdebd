"""What users run: the `protege` command, the papermill pipeline, the run viewer."""
