"""depgraph: dependency graphs for build and task scheduling."""

from .graph import Graph
from .order import (
    ancestors, build_order, descendants, find_cycle, has_cycle, layers, levels,
    topological_sort,
)
from .schedule import (
    critical_path, earliest_start, latest_start, makespan, project_length, schedule,
    slack,
)
from .versions import (
    compare_versions, parse_constraint, parse_version, resolve, resolve_all, satisfies,
)

__all__ = [
    "Graph", "ancestors", "build_order", "compare_versions", "critical_path",
    "descendants", "earliest_start", "find_cycle", "has_cycle", "latest_start",
    "layers", "levels", "makespan", "parse_constraint", "parse_version",
    "project_length", "resolve", "resolve_all", "satisfies", "schedule", "slack",
    "topological_sort",
]
