"""Which input partition owns a user.

Kafka's default partitioner (murmur2 of the key) decides, exactly as a keyed
producer in any client would; an event found elsewhere is forwarded there.

>>> partition_for(b"42", 4) == partition_for(b"42", 4)
True
"""

from __future__ import annotations

from functools import lru_cache

from aiokafka.partitioner import murmur2

REROUTED_HEADER = "streamrec.source"  # "topic:partition:offset" of the original message


@lru_cache(maxsize=1 << 16)  # murmur2 is pure Python; active users repeat
def partition_for(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions
