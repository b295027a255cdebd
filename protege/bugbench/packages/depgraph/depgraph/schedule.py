"""Timing analysis and worker scheduling for task graphs."""

from .order import topological_sort


def _check_durations(graph, durations):
    """Ensure every node has a non-negative duration."""
    for node in graph.nodes():
        if node not in durations:
            raise KeyError(f"missing duration for {node!r}")
        if durations[node] < 0:
            raise ValueError(f"negative duration for {node!r}")


def _priority_key(task, priorities):
    """Sort key: higher priority first, then task name."""
    return (-priorities.get(task, 0), task)


def _ready_time(graph, task, finish):
    """Time all dependencies of task have finished, or None if some are unscheduled."""
    preds = graph.predecessors(task)
    if any(pred not in finish for pred in preds):
        return None
    return max((finish[pred] for pred in preds), default=0)


def _first_free_worker(free_at, now):
    """Lowest-numbered worker that is idle at time `now`."""
    for worker, free in enumerate(free_at):
        if free <= now:
            return worker
    raise ValueError(f"no worker is free at time {now}")


def earliest_start(graph, durations):
    """Earliest time each task can start, given all dependencies finish first."""
    _check_durations(graph, durations)
    start = {}
    for node in topological_sort(graph):
        finishes = [start[p] + durations[p] for p in graph.predecessors(node)]
        start[node] = max(finishes, default=0)
    return start


def project_length(graph, durations):
    """Minimum total time to finish every task with unlimited workers."""
    start = earliest_start(graph, durations)
    return max((start[n] + durations[n] for n in start), default=0)


def latest_start(graph, durations):
    """Latest time each task can start without delaying the whole project."""
    length = project_length(graph, durations)
    latest = {}
    for node in reversed(topological_sort(graph)):
        deadline = min((latest[s] for s in graph.successors(node)), default=length)
        latest[node] = deadline - durations[node]
    return latest


def slack(graph, durations):
    """How long each task may be delayed without delaying the project."""
    early = earliest_start(graph, durations)
    late = latest_start(graph, durations)
    return {node: late[node] - early[node] for node in early}


def critical_path(graph, durations):
    """Longest duration-weighted chain as (length, [tasks]); ties go to smaller names."""
    _check_durations(graph, durations)
    finish = {}
    via = {}
    for node in topological_sort(graph):
        best = None
        for pred in graph.predecessors(node):
            if best is None or finish[pred] > finish[best]:
                best = pred
        via[node] = best
        begin = 0 if best is None else finish[best]
        finish[node] = begin + durations[node]
    end = None
    for node in sorted(finish):
        if end is None or finish[node] > finish[end]:
            end = node
    if end is None:
        return 0, []
    path = []
    while end is not None:
        path.append(end)
        end = via[end]
    path.reverse()
    return finish[path[-1]], path


def schedule(graph, durations, workers, priorities=None):
    """Greedy list schedule on identical workers.

    Whenever a worker is free, it takes the ready task with the highest priority
    (then the smallest name). Returns (task, worker, start, finish) tuples in the
    order tasks are started.
    """
    if workers < 1:
        raise ValueError("need at least one worker")
    _check_durations(graph, durations)
    pending = topological_sort(graph)
    priorities = priorities or {}
    free_at = [0] * workers
    finish = {}
    result = []
    for _ in range(len(pending)):
        ready_at = {}
        for task in pending:
            when = _ready_time(graph, task, finish)
            if when is not None:
                ready_at[task] = when
        now = max(min(free_at), min(ready_at.values()))
        available = [task for task in ready_at if ready_at[task] <= now]
        task = min(available, key=lambda name: _priority_key(name, priorities))
        worker = _first_free_worker(free_at, now)
        end = now + durations[task]
        free_at[worker] = end
        finish[task] = end
        pending.remove(task)
        result.append((task, worker, now, end))
    return result


def makespan(plan):
    """Finish time of the last task in a schedule."""
    return max((entry[3] for entry in plan), default=0)
