"""A bounded memo: a dict that fills itself from a conversion on first use.

For values that recur across records (addresses, UUIDs, escaped names): the hot path is one
dict lookup. When full it is emptied, so a stream of ever-new values (URLs) costs a refill,
never unbounded memory."""

from collections.abc import Callable
from typing import Any


class BoundedMemo(dict):
    def __init__(self, convert: Callable[[Any], Any], limit: int):
        super().__init__()
        self.convert = convert
        self.limit = limit

    def __missing__(self, key: Any) -> Any:
        value = self.convert(key)
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value
