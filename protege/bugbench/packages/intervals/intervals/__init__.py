"""intervals: interval algebra and interval scheduling helpers."""

from intervals.interval import Interval
from intervals.ops import (
    clip,
    coverage,
    coverage_segments,
    difference,
    gaps,
    max_overlap,
    merge,
    subtract,
    total_length,
)
from intervals.schedule import (
    assign_rooms,
    busy_time,
    conflicts,
    first_free_slot,
    free_slots,
    longest_free_slot,
    max_non_overlapping,
    min_removals,
    min_rooms,
    utilization,
)
