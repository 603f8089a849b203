"""Who may read a node: the POSIX owner/group/other check the kernel makes with the mount option
`default_permissions`, made again by the server so that a mount without that option still hands
no one bytes their mode forbids. ACLs are not exported, so mode bits are the whole answer."""

from __future__ import annotations

from collections.abc import Callable, Collection

READ = 0o4
SEARCH = 0o1


def permits(mode: int, owner: int, group: int, uid: int, groups: Callable[[], Collection[int]], want: int) -> bool:
    """Whether user `uid` in `groups()` may `want` (READ, SEARCH, or both) a node. root may read
    and search everything, as with the kernel's DAC override. `groups` is called only when the
    answer depends on it (group and other bits differ), since it may read /proc."""
    if uid == 0:
        return True
    if uid == owner:
        return (mode >> 6) & want == want
    group_grants = (mode >> 3) & want == want
    other_grants = mode & want == want
    if group_grants == other_grants:
        return group_grants
    return group_grants if group in groups() else other_grants


def caller_groups(pid: int, gid: int) -> frozenset[int]:
    """The groups of the process (or thread) `pid` that made a request: FUSE passes only its
    primary group; the supplementary ones are read from /proc. A caller already gone, or one the
    server's pid namespace cannot see (pid 0), counts with its primary group alone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Groups:"):
                    return frozenset({gid, *(int(number) for number in line.split()[1:])})
    except (OSError, ValueError):
        pass
    return frozenset({gid})
