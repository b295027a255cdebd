import pytest

from gridlib import Grid


def test_width():
    assert Grid(["abc", "def"]).width == 3


def test_height():
    assert Grid(["abc", "def"]).height == 2


def test_empty_rows_raise():
    with pytest.raises(ValueError):
        Grid([])


def test_empty_columns_raise():
    with pytest.raises(ValueError):
        Grid(["", ""])


def test_ragged_rows_raise():
    with pytest.raises(ValueError):
        Grid(["abc", "de"])


def test_filled_grid():
    assert Grid.filled(3, 2, "#").to_strings() == ["###", "###"]


def test_filled_default_fill():
    assert Grid.filled(2, 1).to_strings() == [".."]


def test_filled_zero_width_raises():
    with pytest.raises(ValueError):
        Grid.filled(0, 2)


def test_filled_zero_height_raises():
    with pytest.raises(ValueError):
        Grid.filled(2, 0)


def test_filled_multi_character_fill_raises():
    with pytest.raises(ValueError):
        Grid.filled(2, 2, "ab")


def test_width_of_single_row_grid():
    assert Grid(["abcd"]).width == 4


def test_in_bounds_last_cell():
    assert Grid(["abc", "def"]).in_bounds(2, 1) is True


def test_in_bounds_origin():
    assert Grid(["abc", "def"]).in_bounds(0, 0) is True


def test_out_of_bounds_at_width():
    assert Grid(["abc", "def"]).in_bounds(3, 0) is False


def test_out_of_bounds_at_height():
    assert Grid(["abc", "def"]).in_bounds(0, 2) is False


def test_out_of_bounds_negative_x():
    assert Grid(["abc", "def"]).in_bounds(-1, 0) is False


def test_out_of_bounds_negative_y():
    assert Grid(["abc", "def"]).in_bounds(0, -1) is False


def test_get_uses_x_then_y():
    assert Grid(["abc", "def"]).get(2, 1) == "f"


def test_get_outside_raises_key_error():
    with pytest.raises(KeyError):
        Grid(["abc", "def"]).get(3, 1)


def test_set_changes_one_cell():
    grid = Grid(["abc", "def"])
    grid.set(1, 0, "X")
    assert grid.to_strings() == ["aXc", "def"]


def test_set_outside_raises_key_error():
    with pytest.raises(KeyError):
        Grid(["abc", "def"]).set(0, 2, "X")


def test_set_rejects_multi_character_value():
    with pytest.raises(ValueError):
        Grid(["abc", "def"]).set(0, 0, "XY")


def test_set_rejects_empty_value():
    with pytest.raises(ValueError):
        Grid(["abc", "def"]).set(0, 0, "")


def test_neighbours4_in_middle():
    assert Grid(["...", "...", "..."]).neighbours4(1, 1) == [(1, 0), (2, 1), (1, 2), (0, 1)]


def test_neighbours4_at_corner():
    assert Grid(["...", "...", "..."]).neighbours4(0, 0) == [(1, 0), (0, 1)]


def test_neighbours4_at_bottom_right_corner():
    assert Grid(["...", "..."]).neighbours4(2, 1) == [(2, 0), (1, 1)]


def test_neighbours8_in_middle():
    assert Grid(["...", "...", "..."]).neighbours8(1, 1) == [
        (1, 0), (2, 1), (1, 2), (0, 1), (2, 0), (2, 2), (0, 2), (0, 0),
    ]


def test_neighbours8_at_edge():
    assert Grid(["...", "..."]).neighbours8(1, 0) == [(2, 0), (1, 1), (0, 0), (2, 1), (0, 1)]


def test_cells_in_row_major_order():
    assert list(Grid(["ab", "cd"]).cells()) == [(0, 0, "a"), (1, 0, "b"), (0, 1, "c"), (1, 1, "d")]


def test_count_value():
    assert Grid(["#.#", "..#"]).count("#") == 3


def test_count_missing_value_is_zero():
    assert Grid(["#.#", "..#"]).count("x") == 0


def test_find_first_in_row_major_order():
    assert Grid(["..#", "#.."]).find("#") == (2, 0)


def test_find_missing_returns_none():
    assert Grid(["..", ".."]).find("#") is None


def test_find_all():
    assert Grid(["#.#", ".#."]).find_all("#") == [(0, 0), (2, 0), (1, 1)]


def test_row():
    assert Grid(["abc", "def"]).row(1) == "def"


def test_row_of_single_column_grid():
    assert Grid(["a", "b", "c"]).row(2) == "c"


def test_row_out_of_range_raises():
    with pytest.raises(KeyError):
        Grid(["abc", "def"]).row(2)


def test_column():
    assert Grid(["abc", "def"]).column(2) == "cf"


def test_column_of_single_row_grid():
    assert Grid(["abc"]).column(2) == "c"


def test_column_out_of_range_raises():
    with pytest.raises(KeyError):
        Grid(["abc", "def"]).column(3)


def test_subgrid():
    grid = Grid(["abcd", "efgh", "ijkl"])
    assert grid.subgrid(1, 1, 3, 2).to_strings() == ["fgh", "jkl"]


def test_subgrid_single_cell():
    assert Grid(["abcd", "efgh"]).subgrid(3, 1, 1, 1).to_strings() == ["h"]


def test_subgrid_overflowing_raises():
    with pytest.raises(KeyError):
        Grid(["abcd", "efgh"]).subgrid(2, 0, 3, 1)


def test_subgrid_overflowing_bottom_raises():
    with pytest.raises(KeyError):
        Grid(["abcd", "efgh"]).subgrid(0, 1, 1, 2)


def test_subgrid_zero_width_raises():
    with pytest.raises(ValueError):
        Grid(["abcd", "efgh"]).subgrid(0, 0, 0, 1)


def test_subgrid_zero_height_raises():
    with pytest.raises(ValueError):
        Grid(["abcd", "efgh"]).subgrid(0, 0, 1, 0)


def test_transpose():
    assert Grid(["abc", "def"]).transpose().to_strings() == ["ad", "be", "cf"]


def test_flip_horizontal():
    assert Grid(["abc", "def"]).flip_horizontal().to_strings() == ["cba", "fed"]


def test_flip_vertical():
    assert Grid(["abc", "def", "ghi"]).flip_vertical().to_strings() == ["ghi", "def", "abc"]


def test_rotate_clockwise():
    assert Grid(["abc", "def"]).rotate_clockwise().to_strings() == ["da", "eb", "fc"]


def test_rotate_counter_clockwise():
    assert Grid(["abc", "def"]).rotate_counter_clockwise().to_strings() == ["cf", "be", "ad"]


def test_transformations_do_not_modify_original():
    grid = Grid(["abc", "def"])
    grid.rotate_clockwise()
    assert grid.to_strings() == ["abc", "def"]


def test_equality():
    assert Grid(["ab", "cd"]) == Grid(["ab", "cd"])


def test_inequality():
    assert Grid(["ab", "cd"]) != Grid(["ab", "ce"])


def test_equality_with_other_type_is_false():
    assert Grid(["ab"]) != ["ab"]


def test_repr():
    assert repr(Grid(["ab", "cd"])) == "Grid(['ab', 'cd'])"
