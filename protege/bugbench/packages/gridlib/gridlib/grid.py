"""A rectangular grid of single-character cells, addressed as (x, y) with y growing downward."""

from __future__ import annotations

from typing import Iterator, Sequence

ORTHOGONAL = ((0, -1), (1, 0), (0, 1), (-1, 0))
DIAGONAL = ((1, -1), (1, 1), (-1, 1), (-1, -1))


class Grid:
    """A mutable rectangular grid built from a list of equal-length strings."""

    def __init__(self, rows: Sequence[str]) -> None:
        if not rows:
            raise ValueError("a grid needs at least one row")
        width = len(rows[0])
        if width == 0:
            raise ValueError("a grid needs at least one column")
        for index, row in enumerate(rows):
            if len(row) != width:
                raise ValueError(f"row {index} has length {len(row)}, expected {width}")
        self._cells = [list(row) for row in rows]

    @classmethod
    def filled(cls, width: int, height: int, fill: str = ".") -> Grid:
        """Return a ``width`` x ``height`` grid with every cell set to ``fill``."""
        if len(fill) != 1:
            raise ValueError(f"fill must be a single character, got {fill!r}")
        return cls([fill * width for _ in range(height)])

    @property
    def width(self) -> int:
        return len(self._cells[0])

    @property
    def height(self) -> int:
        return len(self._cells)

    def in_bounds(self, x: int, y: int) -> bool:
        """Return True if (x, y) is a cell of the grid."""
        return 0 <= x < self.width and 0 <= y < self.height

    def _check(self, x: int, y: int) -> None:
        if not self.in_bounds(x, y):
            raise KeyError(f"cell ({x}, {y}) is outside a {self.width}x{self.height} grid")

    def get(self, x: int, y: int) -> str:
        """Return the value of cell (x, y)."""
        self._check(x, y)
        return self._cells[y][x]

    def set(self, x: int, y: int, value: str) -> None:
        """Store a single character in cell (x, y)."""
        self._check(x, y)
        if len(value) != 1:
            raise ValueError(f"cell values are single characters, got {value!r}")
        self._cells[y][x] = value

    def _offsets(self, x: int, y: int, offsets: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        result = []
        for dx, dy in offsets:
            nx, ny = x + dx, y + dy
            if self.in_bounds(nx, ny):
                result.append((nx, ny))
        return result

    def neighbours4(self, x: int, y: int) -> list[tuple[int, int]]:
        """Return the in-bounds orthogonal neighbours of (x, y): up, right, down, left."""
        return self._offsets(x, y, ORTHOGONAL)

    def neighbours8(self, x: int, y: int) -> list[tuple[int, int]]:
        """Return the in-bounds orthogonal then diagonal neighbours of (x, y)."""
        return self._offsets(x, y, ORTHOGONAL + DIAGONAL)

    def cells(self) -> Iterator[tuple[int, int, str]]:
        """Yield (x, y, value) for every cell in row-major order."""
        for y, row in enumerate(self._cells):
            for x, value in enumerate(row):
                yield x, y, value

    def count(self, value: str) -> int:
        """Return how many cells hold ``value``."""
        return sum(1 for _, _, cell in self.cells() if cell == value)

    def find(self, value: str) -> tuple[int, int] | None:
        """Return the first (x, y) holding ``value`` in row-major order, or None."""
        for x, y, cell in self.cells():
            if cell == value:
                return (x, y)
        return None

    def find_all(self, value: str) -> list[tuple[int, int]]:
        """Return every (x, y) holding ``value`` in row-major order."""
        return [(x, y) for x, y, cell in self.cells() if cell == value]

    def row(self, y: int) -> str:
        """Return row ``y`` as a string."""
        self._check(0, y)
        return "".join(self._cells[y])

    def column(self, x: int) -> str:
        """Return column ``x`` as a string, top to bottom."""
        self._check(x, 0)
        return "".join(row[x] for row in self._cells)

    def subgrid(self, x: int, y: int, width: int, height: int) -> Grid:
        """Return the ``width`` x ``height`` block whose top-left cell is (x, y)."""
        if width < 1 or height < 1:
            raise ValueError(f"subgrid size must be positive, got {width}x{height}")
        self._check(x, y)
        self._check(x + width - 1, y + height - 1)
        return Grid(["".join(row[x : x + width]) for row in self._cells[y : y + height]])

    def transpose(self) -> Grid:
        """Return a new grid with rows and columns swapped."""
        return Grid([self.column(x) for x in range(self.width)])

    def flip_horizontal(self) -> Grid:
        """Return a new grid mirrored left to right."""
        return Grid([self.row(y)[::-1] for y in range(self.height)])

    def flip_vertical(self) -> Grid:
        """Return a new grid mirrored top to bottom."""
        return Grid([self.row(y) for y in range(self.height - 1, -1, -1)])

    def rotate_clockwise(self) -> Grid:
        """Return a new grid turned 90 degrees clockwise."""
        return self.flip_vertical().transpose()

    def rotate_counter_clockwise(self) -> Grid:
        """Return a new grid turned 90 degrees counter-clockwise."""
        return self.transpose().flip_vertical()

    def to_strings(self) -> list[str]:
        """Return the grid as a list of row strings."""
        return ["".join(row) for row in self._cells]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Grid):
            return NotImplemented
        return self._cells == other._cells

    def __repr__(self) -> str:
        return f"Grid({self.to_strings()!r})"
