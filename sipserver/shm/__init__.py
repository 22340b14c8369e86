"""Shared memory: one segment made before fork, locks, and containers on it.

``Segment`` (the mapping and its allocator), ``LockSet`` (process-shared
locks), ``SharedHash`` (lock-striped bytes -> bytes table) and ``Counters``
(int64 array). See ``/work/shared/ARCHITECTURE.md`` "Shared memory".
"""

from sipserver.shm.counters import Counters
from sipserver.shm.hashtable import SharedHash
from sipserver.shm.locks import LockSet, new_lock
from sipserver.shm.segment import DEFAULT_MB, Segment, ShmError, ShmOutOfMemory

__all__ = ["DEFAULT_MB", "Counters", "LockSet", "Segment", "SharedHash", "ShmError",
           "ShmOutOfMemory", "new_lock"]
