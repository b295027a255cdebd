"""gridlib: integer geometry, character grids and grid search."""

from .geometry import (
    Point, Rect, boundary_points, bounding_box, chebyshev, interior_points,
    is_counter_clockwise, manhattan, polygon_area, rect_area, rect_contains,
    rect_intersection, rects_overlap, rotate_point, squared_distance, union_area,
)
from .grid import Grid
from .search import (
    bfs_distances, component_sizes, count_components, flood_fill, flood_fill_size,
    largest_component, reachable_within, shortest_path, shortest_path_length,
)

__all__ = [
    "Grid", "Point", "Rect", "bfs_distances", "boundary_points", "bounding_box",
    "chebyshev", "component_sizes", "count_components", "flood_fill", "flood_fill_size",
    "interior_points", "is_counter_clockwise", "largest_component", "manhattan",
    "polygon_area", "reachable_within", "rect_area", "rect_contains", "rect_intersection",
    "rects_overlap", "rotate_point", "shortest_path", "shortest_path_length",
    "squared_distance", "union_area",
]
