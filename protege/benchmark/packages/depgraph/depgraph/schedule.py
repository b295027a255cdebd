"""Timing analysis and worker scheduling for task graphs."""

from .order import topological_sort


def _check_durations(graph, durations):
    """Ensure every node has a non-negative duration."""
    for node in graph.nodes():
        if node not in durations:
            raise KeyError(f"missing duration for {node!r}")
        if durations[node] < 0:
            raise ValueError(f"negative duration for {node!r}")


def _finish_time(start, duration):
    return start + duration


def _priority_key(task, priorities):
    """Sort key: higher priority first, then task name."""
    return (-priorities.get(task, 0), task)


def earliest_start(graph, durations):
    """Earliest time each task can start, given all dependencies finish first."""
    _check_durations(graph, durations)
    start = {}
    for node in topological_sort(graph):
        finishes = [_finish_time(start[p], durations[p]) for p in graph.predecessors(node)]
        start[node] = max(finishes, default=0)
    return start


def project_length(graph, durations):
    """Minimum total time to finish every task with unlimited workers."""
    start = earliest_start(graph, durations)
    return max((_finish_time(start[n], durations[n]) for n in start), default=0)


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
        finish[node] = _finish_time(begin, durations[node])
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

    Returns (task, worker, start, finish) tuples in the order tasks are started.
    """
    if workers < 1:
        raise ValueError("need at least one worker")
    _check_durations(graph, durations)
    topological_sort(graph)
    priorities = priorities or {}
    remaining = {node: graph.in_degree(node) for node in graph.nodes()}
    ready = [node for node in graph.nodes() if remaining[node] == 0]
    idle = list(range(workers))
    running = []
    result = []
    time = 0
    while ready or running:
        ready.sort(key=lambda task: _priority_key(task, priorities))
        while ready and idle:
            task = ready.pop(0)
            worker = idle.pop(0)
            end = _finish_time(time, durations[task])
            running.append((end, worker, task))
            result.append((task, worker, time, end))
        running.sort()
        time = running[0][0]
        while running and running[0][0] <= time:
            _, worker, task = running.pop(0)
            idle.append(worker)
            for succ in graph.successors(task):
                remaining[succ] -= 1
                if remaining[succ] == 0:
                    ready.append(succ)
        idle.sort()
    return result


def makespan(plan):
    """Finish time of the last task in a schedule."""
    return max((entry[3] for entry in plan), default=0)
