import pytest

from depgraph import Graph


def test_add_edge_creates_both_nodes():
    assert Graph([("a", "b")]).nodes() == ["a", "b"]


def test_add_node_is_idempotent():
    graph = Graph([("a", "b")])
    graph.add_node("a")
    assert graph.edges() == [("a", "b")]


def test_add_isolated_node():
    graph = Graph()
    graph.add_node("solo")
    assert graph.nodes() == ["solo"]


def test_self_loop_raises():
    with pytest.raises(ValueError):
        Graph([("a", "a")])


def test_edges_are_sorted():
    assert Graph([("b", "c"), ("a", "c"), ("a", "b")]).edges() == [("a", "b"), ("a", "c"), ("b", "c")]


def test_successors_sorted():
    assert Graph([("a", "c"), ("a", "b")]).successors("a") == ["b", "c"]


def test_predecessors_sorted():
    assert Graph([("z", "x"), ("y", "x")]).predecessors("x") == ["y", "z"]


def test_successors_unknown_node_raises():
    with pytest.raises(KeyError):
        Graph([("a", "b")]).successors("c")


def test_predecessors_unknown_node_raises():
    with pytest.raises(KeyError):
        Graph([("a", "b")]).predecessors("c")


def test_in_degree():
    assert Graph([("a", "c"), ("b", "c"), ("c", "d")]).in_degree("c") == 2


def test_out_degree():
    assert Graph([("a", "b"), ("a", "c"), ("d", "a")]).out_degree("a") == 2


def test_degree_of_unknown_node_raises():
    with pytest.raises(KeyError):
        Graph().in_degree("x")


def test_out_degree_of_unknown_node_raises():
    with pytest.raises(KeyError):
        Graph().out_degree("x")


def test_has_edge_is_directional():
    assert Graph([("a", "b")]).has_edge("b", "a") is False


def test_has_edge_with_unknown_source():
    assert Graph([("a", "b")]).has_edge("x", "b") is False


def test_has_edge_present():
    assert Graph([("a", "b")]).has_edge("a", "b") is True


def test_len_and_contains():
    graph = Graph([("a", "b"), ("b", "c")])
    assert len(graph) == 3
    assert "c" in graph
    assert "d" not in graph


def test_remove_edge():
    graph = Graph([("a", "b"), ("b", "c")])
    graph.remove_edge("a", "b")
    assert graph.edges() == [("b", "c")]
    assert graph.predecessors("b") == []


def test_remove_missing_edge_raises():
    with pytest.raises(KeyError):
        Graph([("a", "b")]).remove_edge("b", "a")


def test_remove_node_drops_incident_edges():
    graph = Graph([("a", "b"), ("b", "c"), ("a", "c")])
    graph.remove_node("b")
    assert graph.edges() == [("a", "c")]
    assert graph.nodes() == ["a", "c"]


def test_remove_node_updates_neighbours():
    graph = Graph([("a", "b"), ("b", "c")])
    graph.remove_node("b")
    assert graph.out_degree("a") == 0
    assert graph.in_degree("c") == 0


def test_remove_unknown_node_raises():
    with pytest.raises(KeyError):
        Graph([("a", "b")]).remove_node("z")


def test_sources():
    assert Graph([("a", "c"), ("b", "c"), ("c", "d")]).sources() == ["a", "b"]


def test_sinks():
    assert Graph([("a", "b"), ("a", "c"), ("c", "d")]).sinks() == ["b", "d"]


def test_reverse_flips_edges():
    assert Graph([("a", "b"), ("b", "c")]).reverse().edges() == [("b", "a"), ("c", "b")]


def test_reverse_keeps_isolated_nodes():
    graph = Graph([("a", "b")])
    graph.add_node("z")
    assert graph.reverse().nodes() == ["a", "b", "z"]


def test_reverse_leaves_original_untouched():
    graph = Graph([("a", "b")])
    graph.reverse()
    assert graph.edges() == [("a", "b")]


def test_subgraph_keeps_internal_edges_only():
    graph = Graph([("a", "b"), ("b", "c"), ("a", "c")])
    assert graph.subgraph(["a", "c"]).edges() == [("a", "c")]


def test_subgraph_unknown_node_raises():
    with pytest.raises(KeyError):
        Graph([("a", "b")]).subgraph(["a", "q"])


def test_copy_is_independent():
    graph = Graph([("a", "b")])
    clone = graph.copy()
    clone.add_edge("b", "c")
    assert graph.edges() == [("a", "b")]
    assert clone.edges() == [("a", "b"), ("b", "c")]


def test_from_dependencies_points_from_dependency_to_task():
    graph = Graph.from_dependencies({"app": ["lib", "utils"], "lib": ["utils"], "docs": []})
    assert graph.edges() == [("lib", "app"), ("utils", "app"), ("utils", "lib")]


def test_from_dependencies_keeps_tasks_without_dependencies():
    assert Graph.from_dependencies({"docs": [], "app": ["lib"]}).nodes() == ["app", "docs", "lib"]
