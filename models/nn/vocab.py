"""Item vocabulary: string item ids of the pipeline <-> dense indices of the network.

Index 0 is padding and 1 is "unknown item"; real items start at 2. The network
only scores real items, so its output column for index ``i`` is ``i - FIRST``.

>>> v = ItemVocab(["b", "a"])
>>> v.index("a"), v.index("zzz"), v.item(v.index("b")), len(v)
(3, 1, 'b', 2)
"""

from __future__ import annotations

from collections.abc import Iterable

PAD = 0
UNK = 1
FIRST = 2


class ItemVocab:
    """A fixed, ordered set of item ids."""

    def __init__(self, items: Iterable[str]) -> None:
        self._items: list[str] = list(dict.fromkeys(items))  # keeps first-seen order, drops dups
        self._index = {item: FIRST + i for i, item in enumerate(self._items)}

    def __len__(self) -> int:
        """Number of real items (the size of the scored catalogue)."""
        return len(self._items)

    @property
    def n_indices(self) -> int:
        """Embedding rows needed: padding + unknown + items."""
        return FIRST + len(self._items)

    def index(self, item_id: str) -> int:
        """Index of an item; unseen items map to UNK instead of failing."""
        return self._index.get(item_id, UNK)

    def item(self, index: int) -> str:
        return self._items[index - FIRST]

    def column_item(self, column: int) -> str:
        """Item id of an output column of the scorer."""
        return self._items[column]

    def to_list(self) -> list[str]:
        return list(self._items)
