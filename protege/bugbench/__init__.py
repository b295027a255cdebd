"""The bundled benchmark's bug generator: packages, AST mutator, builder and validator."""
