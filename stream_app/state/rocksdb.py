"""One bounded pool of RocksDB memory for every table partition of a worker.

Faust opens one RocksDB per table partition, each with a block cache and
memtables of its own. A worker's memory then grows with the partitions it
holds, and keeps growing for a long time: compactions write new blocks, and
each private cache fills up to its bound with them. Kafka Streams answers this
with one cache shared by every store and memtables charged to it
(``BoundedMemoryRocksDBConfig``); this is the same for Faust: one LRU cache of
``STREAMREC_ROCKSDB_MEMORY_MB`` holds every partition's blocks *and* pays for
their memtables, through one write-buffer manager that flushes when they pass
``STREAMREC_ROCKSDB_MEMTABLES_MB``. RocksDB's memory is then one number, whatever
the number of partitions, and it fills within minutes instead of hours.

Tables choose it with the store URL ``streamrec-rocksdb://`` (registered in
Faust's store registry on import); the options are those of Faust's RocksDB
store, plus ``memory_bytes`` and ``memtables_bytes``. Newly assigned partitions
are restored in bulk by :mod:`stream_app.state.table_manager`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import rocksdict
from faust import stores
from faust.stores import rocksdb as faust_rocksdb

from stream_app.settings import Settings

SCHEME = "streamrec-rocksdb"
MIB = 1 << 20
_pools: dict[tuple[int, int], tuple[rocksdict.Cache, rocksdict.WriteBufferManager]] = {}


def shared_pool(
    memory_bytes: int, memtables_bytes: int
) -> tuple[rocksdict.Cache, rocksdict.WriteBufferManager]:
    """The process's cache and write-buffer manager for these bounds (made once)."""
    key = (memory_bytes, memtables_bytes)
    if key not in _pools:
        cache = rocksdict.Cache(memory_bytes)
        manager = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
            memtables_bytes, False, cache
        )
        _pools[key] = (cache, manager)
    return _pools[key]


class BoundedOptions(faust_rocksdb.RocksDBOptions):
    """Faust's RocksDB options, with the block cache and memtables drawn from the
    process's shared pool instead of a cache per partition."""

    def __init__(self, memory_bytes: int, memtables_bytes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cache, self.manager = shared_pool(memory_bytes, memtables_bytes)

    def open(self, path: Path, *, read_only: bool = False) -> rocksdict.Rdict:
        options = self.as_options()
        options.set_db_paths([rocksdict.DBPath(str(path), self.target_file_size_base)])
        db = rocksdict.Rdict(
            str(path), options=options, access_type=rocksdict.AccessType.read_write()
        )
        db.set_read_options(rocksdict.ReadOptions())
        return db

    def as_options(self) -> rocksdict.Options:
        options = rocksdict.Options(raw_mode=True)
        options.create_if_missing(True)
        assert self.max_open_files is not None  # Faust's default is a number
        options.set_max_open_files(self.max_open_files)
        options.set_write_buffer_size(self.write_buffer_size)
        options.set_target_file_size_base(self.target_file_size_base)
        options.set_max_write_buffer_number(self.max_write_buffer_number)
        options.set_write_buffer_manager(self.manager)
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, block_based=True)
        table.set_block_cache(self.cache)
        # Index and filter blocks live in the cache too, so they count against it.
        table.set_cache_index_and_filter_blocks(True)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        return options


class Store(faust_rocksdb.Store):
    """Faust's RocksDB store, opening its partitions with :class:`BoundedOptions`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.use_rocksdict:
            raise RuntimeError(f"{SCHEME}:// needs rocksdict (Faust's python-rocksdb is not used)")
        opts = self.rocksdb_options
        # A table declared without these options gets the settings' defaults.
        extra, fields = opts.extra_options, Settings.model_fields
        memory = extra.get("memory_bytes", fields["rocksdb_memory_mb"].default * MIB)
        memtables = extra.get("memtables_bytes", fields["rocksdb_memtables_mb"].default * MIB)
        self.rocksdb_options = BoundedOptions(
            int(memory),
            int(memtables),
            max_open_files=opts.max_open_files,
            write_buffer_size=opts.write_buffer_size,
            max_write_buffer_number=opts.max_write_buffer_number,
            target_file_size_base=opts.target_file_size_base,
            bloom_filter_size=opts.bloom_filter_size,
            use_rocksdict=True,
        )

    def revoke_partitions(self, table: Any, tps: Any) -> None:
        """Faust's, skipped when none of ``tps`` is this table's: upstream ends with a
        full ``gc.collect()`` (to let revoked partitions' databases close), 0.2 s each
        time on a worker with state, once per table at every rebalance, before the
        recovery starts."""
        mine = table.changelog_topic.topics
        if any(tp.topic in mine for tp in tps):
            super().revoke_partitions(table, tps)


def memory_usage() -> dict[str, int]:
    """Bytes held in the shared caches (blocks and the memtables charged to them)."""
    return {
        "block_cache": sum(cache.get_usage() for cache, _ in _pools.values()),
        "memtables": sum(manager.get_usage() for _, manager in _pools.values()),
    }


stores.STORES.aliases.setdefault(SCHEME, f"{__name__}:Store")
