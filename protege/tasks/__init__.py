"""Tasks: the SWE-bench task schema and loaders (the bundled benchmark's instances included)."""
