import pytest

from depgraph import (
    Graph,
    ancestors,
    build_order,
    descendants,
    find_cycle,
    has_cycle,
    layers,
    levels,
    topological_sort,
)

DIAMOND = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]


def test_topological_sort_diamond():
    assert topological_sort(Graph(DIAMOND)) == ["a", "b", "c", "d"]


def test_topological_sort_ties_broken_by_name():
    graph = Graph()
    for name in ["c", "a", "b"]:
        graph.add_node(name)
    assert topological_sort(graph) == ["a", "b", "c"]


def test_topological_sort_dependencies_beat_names():
    graph = Graph([("z", "a")])
    graph.add_node("b")
    assert topological_sort(graph) == ["b", "z", "a"]


def test_topological_sort_waits_for_all_dependencies():
    assert topological_sort(Graph([("b", "a"), ("c", "a"), ("b", "c")])) == ["b", "c", "a"]


def test_topological_sort_empty_graph():
    assert topological_sort(Graph()) == []


def test_topological_sort_cycle_raises_with_path():
    with pytest.raises(ValueError, match="a -> b -> a"):
        topological_sort(Graph([("a", "b"), ("b", "a")]))


def test_find_cycle_returns_closed_path():
    assert find_cycle(Graph([("a", "b"), ("b", "c"), ("c", "a")])) == ["a", "b", "c", "a"]


def test_find_cycle_not_through_start_node():
    assert find_cycle(Graph([("a", "b"), ("b", "c"), ("c", "b")])) == ["b", "c", "b"]


def test_find_cycle_acyclic_returns_none():
    assert find_cycle(Graph([("a", "b"), ("b", "c")])) is None


def test_find_cycle_diamond_is_not_a_cycle():
    assert find_cycle(Graph(DIAMOND)) is None


def test_find_cycle_in_later_component():
    assert find_cycle(Graph([("a", "b"), ("x", "y"), ("y", "x")])) == ["x", "y", "x"]


def test_has_cycle_true():
    assert has_cycle(Graph([("a", "b"), ("b", "a")])) is True


def test_has_cycle_false():
    assert has_cycle(Graph(DIAMOND)) is False


def test_levels_use_longest_chain():
    assert levels(Graph([("a", "b"), ("b", "c"), ("a", "c")])) == {"a": 0, "b": 1, "c": 2}


def test_layers_diamond():
    assert layers(Graph(DIAMOND)) == [["a"], ["b", "c"], ["d"]]


def test_layers_isolated_nodes_share_first_layer():
    graph = Graph()
    graph.add_node("b")
    graph.add_node("a")
    assert layers(graph) == [["a", "b"]]


def test_layers_empty_graph():
    assert layers(Graph()) == []


def test_layers_cycle_raises():
    with pytest.raises(ValueError):
        layers(Graph([("a", "b"), ("b", "a")]))


def test_ancestors_are_transitive():
    assert ancestors(Graph([("a", "b"), ("b", "c"), ("d", "c")]), "c") == ["a", "b", "d"]


def test_ancestors_of_source_is_empty():
    assert ancestors(Graph([("a", "b")]), "a") == []


def test_ancestors_unknown_node_raises():
    with pytest.raises(KeyError):
        ancestors(Graph([("a", "b")]), "q")


def test_descendants_are_transitive():
    assert descendants(Graph([("a", "b"), ("b", "c"), ("d", "c")]), "a") == ["b", "c"]


def test_descendants_of_diamond_top_counted_once():
    assert descendants(Graph(DIAMOND), "a") == ["b", "c", "d"]


def test_build_order_includes_only_needed_tasks():
    graph = Graph([("a", "b"), ("b", "c"), ("x", "y")])
    assert build_order(graph, ["b"]) == ["a", "b"]


def test_build_order_multiple_targets():
    graph = Graph([("a", "b"), ("b", "c"), ("x", "y"), ("q", "r")])
    assert build_order(graph, ["c", "y"]) == ["a", "b", "c", "x", "y"]
