"""Per-video results of a set of videos in a fixed order, mergeable across workers.

Set-level metrics (FID / FVD over all of a system's videos, their per-window values, drift across videos)
pool per-video results, and floating-point sums depend on the order they are pooled in. Each entry here
has a rank (its case's position in the benchmark, or its position in the input list) and the set always
iterates in rank order, so two workers that each handled some of the videos merge (``a.merge(b)``) into
exactly the set one worker handling all of them would hold, whichever worker finished first.
"""

from __future__ import annotations

from typing import Any, Iterator


class VideoSet:
    def __init__(self) -> None:
        self._items: dict[str, tuple[int, Any]] = {}  # key (video path) -> (rank, result)

    def add(self, key: str, item: Any, rank: int | None = None) -> None:
        """Store `item` under `key`; `rank` defaults to the arrival position. A key seen again keeps its rank
        and takes the new item (a dict's behaviour: a video listed twice is counted once)."""
        if key in self._items:
            self._items[key] = (self._items[key][0], item)
            return
        self._items[key] = (len(self._items) if rank is None else int(rank), item)

    def merge(self, other: "VideoSet") -> "VideoSet":
        """Fold `other` into this set (returns self). The same video or the same rank on both sides means the
        work was not split into disjoint parts: that raises rather than count a video twice or guess an order."""
        both = self._items.keys() & other._items.keys()
        if both:
            raise ValueError(f"videos in both parts being merged: {sorted(both)[:3]}")
        mine = {r for r, _ in self._items.values()}
        clash = sorted(mine & {r for r, _ in other._items.values()})
        if clash:
            raise ValueError(f"ranks {clash[:3]} occur in both parts being merged; give each video its case's "
                             "position in the benchmark")
        self._items.update(other._items)
        return self

    def items(self) -> list[tuple[str, Any]]:
        return [(k, v) for k, (_, v) in sorted(self._items.items(), key=lambda kv: kv[1][0])]

    def values(self) -> list[Any]:
        return [v for _, v in self.items()]

    def __iter__(self) -> Iterator[str]:
        return iter(k for k, _ in self.items())

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)
