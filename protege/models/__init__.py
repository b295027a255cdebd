"""Models: the registry, the inference engine, policies, serving, experts, judges, ORACLE demonstrators, the spec factory."""
