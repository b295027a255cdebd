"""A small directed graph for dependency tracking."""


class Graph:
    """Directed graph where an edge u -> v means u must finish before v starts."""

    def __init__(self, edges=()):
        self._succ = {}
        self._pred = {}
        for u, v in edges:
            self.add_edge(u, v)

    @classmethod
    def from_dependencies(cls, mapping):
        """Build a graph from {task: [dependencies]}; each dependency runs first."""
        graph = cls()
        for task, deps in mapping.items():
            graph.add_node(task)
            for dep in deps:
                graph.add_edge(dep, task)
        return graph

    def _require(self, node):
        if node not in self._succ:
            raise KeyError(f"unknown node {node!r}")

    def add_node(self, node):
        """Add a node; adding an existing node is a no-op."""
        if node not in self._succ:
            self._succ[node] = set()
            self._pred[node] = set()

    def add_edge(self, u, v):
        """Add the edge u -> v, creating missing nodes; self-loops are rejected."""
        if u == v:
            raise ValueError(f"self-dependency on {u!r}")
        self.add_node(u)
        self.add_node(v)
        self._succ[u].add(v)
        self._pred[v].add(u)

    def remove_edge(self, u, v):
        """Remove the edge u -> v; raises KeyError if it does not exist."""
        if not self.has_edge(u, v):
            raise KeyError(f"no edge {u!r} -> {v!r}")
        self._succ[u].discard(v)
        self._pred[v].discard(u)

    def remove_node(self, node):
        """Remove a node together with all edges touching it."""
        self._require(node)
        for succ in self._succ.pop(node):
            self._pred[succ].discard(node)
        for pred in self._pred.pop(node):
            self._succ[pred].discard(node)

    def has_node(self, node):
        """True if the node is in the graph."""
        return node in self._succ

    def has_edge(self, u, v):
        """True if the edge u -> v is in the graph."""
        return u in self._succ and v in self._succ[u]

    def __contains__(self, node):
        return self.has_node(node)

    def __len__(self):
        return len(self._succ)

    def nodes(self):
        """All nodes, sorted."""
        return sorted(self._succ)

    def edges(self):
        """All edges as sorted (u, v) pairs."""
        return sorted((u, v) for u in self._succ for v in self._succ[u])

    def successors(self, node):
        """Nodes that directly depend on `node`, sorted."""
        self._require(node)
        return sorted(self._succ[node])

    def predecessors(self, node):
        """Direct dependencies of `node`, sorted."""
        self._require(node)
        return sorted(self._pred[node])

    def out_degree(self, node):
        """Number of outgoing edges."""
        self._require(node)
        return len(self._succ[node])

    def in_degree(self, node):
        """Number of incoming edges."""
        self._require(node)
        return len(self._pred[node])

    def sources(self):
        """Nodes without dependencies, sorted."""
        return [n for n in self.nodes() if self.in_degree(n) == 0]

    def sinks(self):
        """Nodes nothing depends on, sorted."""
        return [n for n in self.nodes() if self.out_degree(n) == 0]

    def reverse(self):
        """New graph with every edge flipped."""
        flipped = Graph()
        for node in self._succ:
            flipped.add_node(node)
        for u, v in self.edges():
            flipped.add_edge(v, u)
        return flipped

    def subgraph(self, nodes):
        """New graph induced by the given nodes (unknown nodes raise KeyError)."""
        keep = set(nodes)
        part = Graph()
        for node in keep:
            self._require(node)
            part.add_node(node)
        for u, v in self.edges():
            if u in keep and v in keep:
                part.add_edge(u, v)
        return part

    def copy(self):
        """Independent copy of the graph."""
        return self.subgraph(self._succ)
