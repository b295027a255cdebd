"""Foundations every layer uses: config, paths, protocols, trajectory records, metrics, loop detection, text."""
