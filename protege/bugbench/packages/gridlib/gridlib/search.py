"""Breadth-first search, flood fill and connected components on a Grid."""

from __future__ import annotations

from collections import deque

from .grid import Grid

Cell = tuple[int, int]


def _require_open(grid: Grid, cell: Cell, wall: str) -> None:
    x, y = cell
    if not grid.in_bounds(x, y):
        raise KeyError(f"cell {cell} is outside the grid")
    if grid.get(x, y) == wall:
        raise ValueError(f"cell {cell} is a wall")


def _bfs(grid: Grid, start: Cell, wall: str, limit: int | None = None) -> dict[Cell, Cell | None]:
    """Return a parent map of every open cell reachable from ``start`` within ``limit`` steps."""
    parents: dict[Cell, Cell | None] = {start: None}
    depth = {start: 0}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        if limit is not None and depth[cell] >= limit:
            continue
        for nxt in grid.neighbours4(*cell):
            if nxt in parents or grid.get(*nxt) == wall:
                continue
            parents[nxt] = cell
            depth[nxt] = depth[cell] + 1
            queue.append(nxt)
    return parents


def bfs_distances(grid: Grid, start: Cell, wall: str = "#") -> dict[Cell, int]:
    """Return the step distance from ``start`` to every reachable open cell."""
    _require_open(grid, start, wall)
    distances = {start: 0}
    for cell, parent in _bfs(grid, start, wall).items():
        if parent is not None:
            distances[cell] = distances[parent] + 1
    return distances


def _walk_back(parents: dict[Cell, Cell | None], goal: Cell) -> list[Cell]:
    path = [goal]
    while parents[path[-1]] is not None:
        path.append(parents[path[-1]])
    path.reverse()
    return path


def shortest_path(grid: Grid, start: Cell, goal: Cell, wall: str = "#") -> list[Cell] | None:
    """Return the cells of a shortest 4-connected path from start to goal, or None."""
    _require_open(grid, start, wall)
    _require_open(grid, goal, wall)
    parents = _bfs(grid, start, wall)
    if goal not in parents:
        return None
    return _walk_back(parents, goal)


def shortest_path_length(grid: Grid, start: Cell, goal: Cell, wall: str = "#") -> int:
    """Return the number of steps on a shortest path, or -1 if goal is unreachable."""
    path = shortest_path(grid, start, goal, wall)
    if path is None:
        return -1
    return len(path) - 1


def reachable_within(grid: Grid, start: Cell, steps: int, wall: str = "#") -> int:
    """Return how many open cells (start included) are at most ``steps`` moves away."""
    if steps < 0:
        raise ValueError(f"steps must be non-negative, got {steps}")
    _require_open(grid, start, wall)
    return len(_bfs(grid, start, wall, steps))


def _region(grid: Grid, start: Cell, diagonal: bool) -> set[Cell]:
    """Return the cells connected to ``start`` that hold the same value."""
    target = grid.get(*start)
    seen = {start}
    stack = [start]
    while stack:
        x, y = stack.pop()
        around = grid.neighbours8(x, y) if diagonal else grid.neighbours4(x, y)
        for nxt in around:
            if nxt not in seen and grid.get(*nxt) == target:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def flood_fill_size(grid: Grid, start: Cell, diagonal: bool = False) -> int:
    """Return the size of the same-valued region containing ``start``."""
    return len(_region(grid, start, diagonal))


def flood_fill(grid: Grid, start: Cell, value: str, diagonal: bool = False) -> Grid:
    """Return a copy of ``grid`` with the region containing ``start`` repainted."""
    result = Grid(grid.to_strings())
    for x, y in _region(grid, start, diagonal):
        result.set(x, y, value)
    return result


def component_sizes(grid: Grid, value: str, diagonal: bool = False) -> list[int]:
    """Return the sizes of the regions of ``value``, largest first."""
    seen: set[Cell] = set()
    sizes = []
    for x, y, cell in grid.cells():
        if cell != value or (x, y) in seen:
            continue
        region = _region(grid, (x, y), diagonal)
        seen |= region
        sizes.append(len(region))
    return sorted(sizes, reverse=True)


def count_components(grid: Grid, value: str, diagonal: bool = False) -> int:
    """Return the number of separate regions made of ``value``."""
    return len(component_sizes(grid, value, diagonal))


def largest_component(grid: Grid, value: str, diagonal: bool = False) -> int:
    """Return the size of the largest region of ``value``, or 0 if there is none."""
    sizes = component_sizes(grid, value, diagonal)
    if not sizes:
        return 0
    return sizes[0]
