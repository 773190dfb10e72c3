"""The memory file (memcached ``-e PATH``): its size from the volume, its blocks allocated up
front (a full volume is an error now, not a SIGBUS later), and its owner."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from memfleet.fleet.node.messages import NodeError, say
from memfleet.fleet.node.pins import pins_file
from memfleet.fleet.node.state_file import state_file

MIB = 1024 * 1024
# memcached stores its state beside the memory file; with slab preallocation it needs one
# 1 MiB page per slab class (39 with the default -f/-n/-I), so less than this cannot start.
MIN_MEMORY_FILE_MB = 40


def volume_reserve(total: int) -> int:
    """Bytes kept free on the volume: file-system overhead (1 %, at least 2 MiB: block
    bitmaps, journal, the directory) plus 1 MiB for the state file and the pin file."""
    return max(2 * MIB, total // 100) + MIB


@dataclass(frozen=True)
class VolumeSize:
    """What ``--size-from-volume`` computed."""

    total: int  # bytes of the file system holding the memory file
    reserve: int
    memory_mb: int  # the -m given to memcached


def size_from_volume(memory_file: Path) -> VolumeSize:
    """The usable cache size on the file system that holds (or will hold) ``memory_file``."""
    st = os.statvfs(memory_file.parent)
    total = st.f_blocks * st.f_frsize
    reserve = volume_reserve(total)
    mb = (total - reserve) // MIB
    if mb < 1:
        raise NodeError(f"{memory_file.parent}: volume of {total} bytes is too small for a cache")
    return VolumeSize(total, reserve, int(mb))


def preallocate(memory_file: Path, memory_mb: int) -> None:
    """Make ``memory_file`` exactly ``memory_mb`` MiB with every block allocated.

    Existing contents are kept (a warm restart needs them); a larger file is cut to size,
    which memcached would do anyway (and it will start cold then).
    """
    size = memory_mb * MIB
    fd = os.open(memory_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_size > size:
            os.ftruncate(fd, size)
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError as exc:
            if exc.errno == 28:  # ENOSPC: say so now rather than SIGBUS later
                raise NodeError(f"{memory_file}: no space for {memory_mb} MB") from None
            # Some file systems (old NFS, some FUSE) cannot fallocate: size it sparsely.
            say(f"warning: {memory_file}: cannot preallocate ({exc.strerror}); sparse file")
            os.ftruncate(fd, size)
    finally:
        os.close(fd)


def chown_files(memory_file: Path, owner: str) -> None:
    """Give the memory file, its state and pin files and their directory to ``owner``."""
    for path in (memory_file.parent, memory_file, state_file(memory_file), pins_file(memory_file)):
        if path.exists():
            shutil.chown(path, user=owner, group=_primary_group(owner))


def _primary_group(owner: str) -> int | None:
    import pwd

    try:
        return pwd.getpwnam(owner).pw_gid
    except KeyError:
        raise NodeError(f"--owner/--user: no such user {owner!r}") from None
