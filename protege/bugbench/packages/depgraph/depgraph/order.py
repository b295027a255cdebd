"""Ordering, cycle detection and reachability on a Graph."""

import heapq

_VISITING = "visiting"
_DONE = "done"


def _dfs_cycle(graph, node, state, stack):
    """Depth-first search from node; return a cycle path or None."""
    state[node] = _VISITING
    stack.append(node)
    for succ in graph.successors(node):
        if state.get(succ) == _VISITING:
            return stack[stack.index(succ):] + [succ]
        if succ not in state:
            found = _dfs_cycle(graph, succ, state, stack)
            if found is not None:
                return found
    stack.pop()
    state[node] = _DONE
    return None


def _reachable(graph, start, forward):
    """Sorted nodes reachable from start along (forward) or against edges."""
    step = graph.successors if forward else graph.predecessors
    seen = set()
    pending = list(step(start))
    while pending:
        node = pending.pop()
        if node in seen:
            continue
        seen.add(node)
        pending.extend(step(node))
    return sorted(seen)


def find_cycle(graph):
    """A cycle as a path [a, b, ..., a], or None when the graph is acyclic."""
    state = {}
    for start in graph.nodes():
        if start in state:
            continue
        cycle = _dfs_cycle(graph, start, state, [])
        if cycle is not None:
            return cycle
    return None


def has_cycle(graph):
    """True if the graph contains a dependency cycle."""
    return find_cycle(graph) is not None


def topological_sort(graph):
    """Nodes in dependency order; ties go to the alphabetically smallest node."""
    remaining = {node: graph.in_degree(node) for node in graph.nodes()}
    ready = [node for node, count in remaining.items() if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        for succ in graph.successors(node):
            remaining[succ] -= 1
            if remaining[succ] == 0:
                heapq.heappush(ready, succ)
    if len(order) < len(remaining):
        cycle = find_cycle(graph)
        raise ValueError(f"dependency cycle: {' -> '.join(map(str, cycle))}")
    return order


def levels(graph):
    """Map each node to its level: the length of the longest chain above it."""
    level = {}
    for node in topological_sort(graph):
        above = [level[pred] + 1 for pred in graph.predecessors(node)]
        level[node] = max(above, default=0)
    return level


def layers(graph):
    """Groups of nodes that can run in parallel, in execution order."""
    level = levels(graph)
    count = max(level.values(), default=-1) + 1
    result = [[] for _ in range(count)]
    for node in sorted(level):
        result[level[node]].append(node)
    return result


def ancestors(graph, node):
    """All transitive dependencies of node, sorted."""
    return _reachable(graph, node, False)


def descendants(graph, node):
    """All nodes that transitively depend on node, sorted."""
    return _reachable(graph, node, True)


def build_order(graph, targets):
    """Topological order of the targets and everything they depend on."""
    needed = set()
    for target in targets:
        needed.add(target)
        needed.update(ancestors(graph, target))
    return topological_sort(graph.subgraph(needed))
