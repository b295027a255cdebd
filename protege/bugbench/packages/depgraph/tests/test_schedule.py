import pytest

from depgraph import (
    Graph,
    critical_path,
    earliest_start,
    latest_start,
    makespan,
    project_length,
    schedule,
    slack,
)

DIAMOND = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]
DURATIONS = {"a": 3, "b": 2, "c": 4, "d": 1}


def test_earliest_start_diamond():
    assert earliest_start(Graph(DIAMOND), DURATIONS) == {"a": 0, "b": 3, "c": 3, "d": 7}


def test_earliest_start_missing_duration_raises():
    with pytest.raises(KeyError):
        earliest_start(Graph(DIAMOND), {"a": 1, "b": 1, "c": 1})


def test_earliest_start_negative_duration_raises():
    with pytest.raises(ValueError):
        earliest_start(Graph([("a", "b")]), {"a": 1, "b": -1})


def test_earliest_start_cycle_raises():
    with pytest.raises(ValueError):
        earliest_start(Graph([("a", "b"), ("b", "a")]), {"a": 1, "b": 1})


def test_project_length_diamond():
    assert project_length(Graph(DIAMOND), DURATIONS) == 8


def test_project_length_empty_graph():
    assert project_length(Graph(), {}) == 0


def test_latest_start_diamond():
    assert latest_start(Graph(DIAMOND), DURATIONS) == {"a": 0, "b": 5, "c": 3, "d": 7}


def test_latest_start_short_independent_task():
    graph = Graph([("a", "b")])
    graph.add_node("z")
    assert latest_start(graph, {"a": 2, "b": 3, "z": 1}) == {"a": 0, "b": 2, "z": 4}


def test_slack_diamond():
    assert slack(Graph(DIAMOND), DURATIONS) == {"a": 0, "b": 2, "c": 0, "d": 0}


def test_critical_path_diamond():
    assert critical_path(Graph(DIAMOND), DURATIONS) == (8, ["a", "c", "d"])


def test_critical_path_tie_prefers_smaller_name():
    durations = {"a": 1, "b": 2, "c": 2, "d": 1}
    assert critical_path(Graph(DIAMOND), durations) == (4, ["a", "b", "d"])


def test_critical_path_picks_longest_end():
    graph = Graph([("a", "b")])
    graph.add_node("c")
    assert critical_path(graph, {"a": 1, "b": 1, "c": 5}) == (5, ["c"])


def test_critical_path_tie_between_ends():
    graph = Graph()
    graph.add_node("y")
    graph.add_node("x")
    assert critical_path(graph, {"x": 5, "y": 5}) == (5, ["x"])


def test_critical_path_empty_graph():
    assert critical_path(Graph(), {}) == (0, [])


def test_schedule_two_workers():
    graph = Graph([("a", "c"), ("b", "c")])
    graph.add_node("d")
    plan = schedule(graph, {"a": 2, "b": 3, "c": 1, "d": 2}, 2)
    assert plan == [("a", 0, 0, 2), ("b", 1, 0, 3), ("d", 0, 2, 4), ("c", 1, 3, 4)]


def test_schedule_priorities_go_first():
    graph = Graph([("a", "c"), ("b", "c")])
    graph.add_node("d")
    plan = schedule(graph, {"a": 2, "b": 3, "c": 1, "d": 2}, 2, {"d": 5})
    assert plan == [("d", 0, 0, 2), ("a", 1, 0, 2), ("b", 0, 2, 5), ("c", 0, 5, 6)]


def test_schedule_positive_priority_beats_default():
    graph = Graph()
    for name in ["a", "b", "c"]:
        graph.add_node(name)
    plan = schedule(graph, {"a": 1, "b": 1, "c": 1}, 1, {"c": 1})
    assert plan == [("c", 0, 0, 1), ("a", 0, 1, 2), ("b", 0, 2, 3)]


def test_schedule_negative_priority_goes_last():
    graph = Graph()
    for name in ["a", "b", "c"]:
        graph.add_node(name)
    plan = schedule(graph, {"a": 1, "b": 1, "c": 1}, 1, {"a": -1})
    assert plan == [("b", 0, 0, 1), ("c", 0, 1, 2), ("a", 0, 2, 3)]


def test_schedule_single_worker_runs_sequentially():
    graph = Graph([("a", "c"), ("b", "c")])
    graph.add_node("d")
    plan = schedule(graph, {"a": 2, "b": 3, "c": 1, "d": 2}, 1)
    assert plan == [("a", 0, 0, 2), ("b", 0, 2, 5), ("c", 0, 5, 6), ("d", 0, 6, 8)]


def test_schedule_lowest_free_worker_is_used():
    graph = Graph([("a", "c"), ("a", "d")])
    graph.add_node("b")
    plan = schedule(graph, {"a": 2, "b": 1, "c": 1, "d": 1}, 2)
    assert plan == [("a", 0, 0, 2), ("b", 1, 0, 1), ("c", 0, 2, 3), ("d", 1, 2, 3)]


def test_schedule_zero_duration_task():
    assert schedule(Graph([("a", "b")]), {"a": 0, "b": 1}, 1) == [("a", 0, 0, 0), ("b", 0, 0, 1)]


def test_schedule_empty_graph():
    assert schedule(Graph(), {}, 3) == []


def test_schedule_zero_workers_raises():
    with pytest.raises(ValueError, match="at least one worker"):
        schedule(Graph([("a", "b")]), {"a": 1, "b": 1}, 0)


def test_schedule_cycle_raises():
    with pytest.raises(ValueError):
        schedule(Graph([("a", "b"), ("b", "a")]), {"a": 1, "b": 1}, 2)


def test_makespan():
    assert makespan([("a", 0, 0, 2), ("b", 1, 0, 5), ("c", 0, 2, 4)]) == 5


def test_makespan_empty_plan():
    assert makespan([]) == 0
