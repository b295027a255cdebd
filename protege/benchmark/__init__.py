"""The bundled bug-fix benchmark: small pure-Python packages, an AST bug injector, and the
validated instances built from them (``protege/benchmark/data/instances.jsonl``)."""
