import pytest

from gridlib import (
    Grid,
    bfs_distances,
    component_sizes,
    count_components,
    flood_fill,
    flood_fill_size,
    largest_component,
    reachable_within,
    shortest_path,
    shortest_path_length,
)

MAZE = Grid([
    "..#...",
    ".##.#.",
    "....#.",
    "#.#...",
])

ISLANDS = Grid([
    "##..#",
    "#...#",
    "..#..",
    ".#.##",
])


def test_bfs_distances_small_grid():
    assert bfs_distances(Grid(["..", "#."]), (0, 0)) == {(0, 0): 0, (1, 0): 1, (1, 1): 2}


def test_bfs_distances_to_far_corner():
    assert bfs_distances(MAZE, (0, 0))[(5, 3)] == 8


def test_bfs_distances_skip_walled_off_cells():
    assert len(bfs_distances(Grid([".#.", ".#."]), (0, 0))) == 2


def test_bfs_distances_start_on_wall_raises():
    with pytest.raises(ValueError):
        bfs_distances(MAZE, (2, 0))


def test_bfs_distances_start_outside_raises():
    with pytest.raises(KeyError):
        bfs_distances(MAZE, (6, 0))


def test_shortest_path_length_through_maze():
    assert shortest_path_length(MAZE, (0, 0), (5, 0)) == 9


def test_shortest_path_length_same_cell_is_zero():
    assert shortest_path_length(MAZE, (3, 2), (3, 2)) == 0


def test_shortest_path_length_adjacent_cells():
    assert shortest_path_length(MAZE, (0, 0), (1, 0)) == 1


def test_shortest_path_length_unreachable_is_minus_one():
    assert shortest_path_length(Grid([".#.", ".#."]), (0, 0), (2, 1)) == -1


def test_shortest_path_length_goal_on_wall_raises():
    with pytest.raises(ValueError):
        shortest_path_length(MAZE, (0, 0), (1, 1))


def test_shortest_path_length_custom_wall():
    assert shortest_path_length(Grid(["a#a", "aaa"]), (0, 0), (2, 0), wall="x") == 2


def test_shortest_path_cells():
    assert shortest_path(MAZE, (1, 0), (3, 0)) == [
        (1, 0), (0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (3, 2), (3, 1), (3, 0),
    ]


def test_shortest_path_to_self():
    assert shortest_path(MAZE, (0, 0), (0, 0)) == [(0, 0)]


def test_shortest_path_unreachable_is_none():
    assert shortest_path(Grid(["..#.", "..#."]), (0, 0), (3, 1)) is None


def test_shortest_path_goal_outside_raises():
    with pytest.raises(KeyError):
        shortest_path(MAZE, (0, 0), (0, 4))


def test_reachable_within_zero_steps_is_start_only():
    assert reachable_within(MAZE, (0, 0), 0) == 1


def test_reachable_within_one_step():
    assert reachable_within(MAZE, (1, 2), 1) == 4


def test_reachable_within_two_steps():
    assert reachable_within(Grid.filled(5, 5), (2, 2), 2) == 13


def test_reachable_within_respects_walls():
    assert reachable_within(MAZE, (0, 0), 3) == 5


def test_reachable_within_large_budget_covers_region():
    assert reachable_within(MAZE, (0, 0), 100) == 17


def test_reachable_within_negative_steps_raises():
    with pytest.raises(ValueError):
        reachable_within(MAZE, (0, 0), -1)


def test_reachable_within_start_on_wall_raises():
    with pytest.raises(ValueError):
        reachable_within(MAZE, (0, 3), 2)


def test_flood_fill_size_orthogonal():
    assert flood_fill_size(ISLANDS, (2, 0)) == 10


def test_flood_fill_size_single_cell():
    assert flood_fill_size(ISLANDS, (2, 2)) == 1


def test_flood_fill_size_diagonal_joins_regions():
    assert flood_fill_size(ISLANDS, (2, 2), diagonal=True) == 4


def test_flood_fill_size_of_wall_region():
    assert flood_fill_size(ISLANDS, (0, 0)) == 3


def test_flood_fill_repaints_region():
    assert flood_fill(Grid(["..#", ".##", "#.."]), (0, 0), "o").to_strings() == ["oo#", "o##", "#.."]


def test_flood_fill_non_square_region():
    assert flood_fill(Grid(["...#", "##.#"]), (0, 0), "o").to_strings() == ["ooo#", "##o#"]


def test_flood_fill_size_in_corridor():
    assert flood_fill_size(Grid(["....#", "###.#", "#....", "#####"]), (0, 0)) == 9


def test_flood_fill_diagonal():
    assert flood_fill(Grid(["#..", ".#.", "..#"]), (0, 0), "x", diagonal=True).to_strings() == [
        "x..", ".x.", "..x",
    ]


def test_flood_fill_leaves_original_untouched():
    grid = Grid(["..", ".."])
    flood_fill(grid, (0, 0), "x")
    assert grid.to_strings() == ["..", ".."]


def test_component_sizes_sorted_largest_first():
    assert component_sizes(ISLANDS, "#") == [3, 2, 2, 1, 1]


def test_component_sizes_with_diagonals():
    assert component_sizes(ISLANDS, "#", diagonal=True) == [4, 3, 2]


def test_component_sizes_missing_value():
    assert component_sizes(ISLANDS, "x") == []


def test_count_components():
    assert count_components(ISLANDS, ".") == 2


def test_count_components_diagonal():
    assert count_components(Grid(["#.#", ".#.", "#.#"]), "#", diagonal=True) == 1


def test_count_components_orthogonal_only():
    assert count_components(Grid(["#.#", ".#.", "#.#"]), "#") == 5


def test_largest_component():
    assert largest_component(ISLANDS, ".") == 10


def test_largest_component_missing_value_is_zero():
    assert largest_component(ISLANDS, "x") == 0
