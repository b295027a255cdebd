import pytest

from depgraph import (
    compare_versions,
    parse_constraint,
    parse_version,
    resolve,
    resolve_all,
    satisfies,
)


def test_parse_version():
    assert parse_version("1.2.3") == (1, 2, 3)


def test_parse_version_strips_whitespace():
    assert parse_version(" 2.0 ") == (2, 0)


def test_parse_version_rejects_letters():
    with pytest.raises(ValueError):
        parse_version("1.x")


def test_parse_version_rejects_empty_component():
    with pytest.raises(ValueError):
        parse_version("1..2")


def test_compare_versions_numeric_not_lexical():
    assert compare_versions("1.2", "1.10") == -1


def test_compare_versions_greater():
    assert compare_versions("2.0", "1.9.9") == 1


def test_compare_versions_pads_with_zeros():
    assert compare_versions("1.2", "1.2.0") == 0


def test_compare_versions_longer_is_greater():
    assert compare_versions("1.2.1", "1.2") == 1


def test_parse_constraint_multiple_clauses():
    assert parse_constraint(">=1.2, <2.0") == [(">=", (1, 2)), ("<", (2, 0))]


def test_parse_constraint_two_char_operator():
    assert parse_constraint("<=3") == [("<=", (3,))]


def test_parse_constraint_bare_version_means_equal():
    assert parse_constraint("1.4") == [("==", (1, 4))]


def test_parse_constraint_wildcard_is_empty():
    assert parse_constraint("*") == []


def test_parse_constraint_empty_string():
    assert parse_constraint("") == []


def test_satisfies_inside_range():
    assert satisfies("1.5", ">=1.2,<2.0") is True


def test_satisfies_upper_bound_is_exclusive():
    assert satisfies("2.0", ">=1.2,<2.0") is False


def test_satisfies_lower_bound_is_inclusive():
    assert satisfies("1.2", ">=1.2,<2.0") is True


def test_satisfies_below_range():
    assert satisfies("1.1.9", ">=1.2") is False


def test_satisfies_strictly_greater_excludes_equal():
    assert satisfies("1.2", ">1.2") is False


def test_satisfies_strictly_greater():
    assert satisfies("1.2.1", ">1.2") is True


def test_satisfies_less_or_equal():
    assert satisfies("1.2", "<=1.2") is True


def test_satisfies_less_or_equal_rejects_higher():
    assert satisfies("1.3", "<=1.2") is False


def test_satisfies_equal_with_padding():
    assert satisfies("1.2.0", "==1.2") is True


def test_satisfies_not_equal_rejects_same_version():
    assert satisfies("1.2", "!=1.2.0") is False


def test_satisfies_not_equal_accepts_other():
    assert satisfies("1.3", "!=1.2") is True


def test_satisfies_compatible_release_patch():
    assert satisfies("1.4.5", "~=1.4.2") is True


def test_satisfies_compatible_release_includes_base():
    assert satisfies("1.4.2", "~=1.4.2") is True


def test_satisfies_compatible_release_rejects_next_minor():
    assert satisfies("1.5.0", "~=1.4.2") is False


def test_satisfies_compatible_release_rejects_lower():
    assert satisfies("1.4.1", "~=1.4.2") is False


def test_satisfies_compatible_release_minor():
    assert satisfies("1.9", "~=1.4") is True


def test_satisfies_compatible_release_rejects_next_major():
    assert satisfies("2.0", "~=1.4") is False


def test_satisfies_compatible_release_needs_two_components():
    with pytest.raises(ValueError):
        satisfies("1.0", "~=1")


def test_satisfies_wildcard():
    assert satisfies("0.1", "*") is True


def test_resolve_picks_highest_match():
    assert resolve(["1.0", "1.10", "1.9", "2.0"], ">=1.0,<2.0") == "1.10"


def test_resolve_keeps_first_of_equal_versions():
    assert resolve(["1.2.0", "1.2"], "==1.2") == "1.2.0"


def test_resolve_no_match_raises():
    with pytest.raises(ValueError):
        resolve(["1.0", "1.1"], ">=2.0")


def test_resolve_all():
    requirements = {"b": ">=2", "a": "<1.5"}
    index = {"a": ["1.0", "1.4", "1.6"], "b": ["1.9", "2.3", "2.1"]}
    assert resolve_all(requirements, index) == {"a": "1.4", "b": "2.3"}


def test_resolve_all_unknown_package_raises():
    with pytest.raises(KeyError):
        resolve_all({"a": ">=1"}, {"b": ["1.0"]})
