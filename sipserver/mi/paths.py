"""Where the MI FIFO lives when the script does not say.

Not in a world-writable sticky directory such as /tmp: since Linux 4.19
(`fs.protected_fifos`) a FIFO there that another user owns cannot be opened
for writing by a client that creates-or-opens it (a shell's `>`), and
anybody could plant a FIFO of that name first. The default is a directory
the server owns: `/run/sipserver/` for root, else the user's runtime
directory (`$XDG_RUNTIME_DIR/sipserver/`, `/run/user/<uid>/sipserver/`),
else a private `sipserver-<uid>` directory under the temp directory.
sipctl computes the same default, so the two meet without configuration.

Also here: 1.6's user2uid/group2gid for the owner parameters of mi_fifo
and mi_datagram (a name or a number).
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
import tempfile
from typing import Any

from ..core.modload import ModuleError

FIFO_BASENAME = "sipserver_fifo"
SYSTEM_RUN_DIR = "/run/sipserver"


def runtime_dir(uid: int | None = None) -> str:
    """The directory for the server's FIFO (not created here)."""
    uid = os.geteuid() if uid is None else uid
    if uid == 0:
        return SYSTEM_RUN_DIR
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg) and os.path.isdir(xdg):
        return os.path.join(xdg, "sipserver")
    user_run = f"/run/user/{uid}"
    if os.path.isdir(user_run):
        return os.path.join(user_run, "sipserver")
    return os.path.join(tempfile.gettempdir(), f"sipserver-{uid}")


def default_fifo_path(uid: int | None = None) -> str:
    return os.path.join(runtime_dir(uid), FIFO_BASENAME)


def ensure_private_dir(path: str, mode: int = 0o755) -> None:
    """Create `path` if needed and check it is a real directory we own.

    Raises OSError (with a readable message) when it is a symlink, not a
    directory, owned by someone else, or writable by others.
    """
    try:
        os.makedirs(path, mode=mode, exist_ok=True)
    except OSError as e:
        raise OSError(e.errno, f"cannot create directory {path}: {e.strerror}") from None
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise OSError(f"{path} is not a directory")
    if st.st_uid != os.geteuid():
        raise OSError(f"{path} is owned by uid {st.st_uid}, not by us (uid {os.geteuid()})")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise OSError(f"{path} is writable by other users")


def resolve_user(value: Any, what: str) -> tuple[int, int]:
    """(uid, gid) of a user name or number (1.6 user2uid); -1 for "not set"."""
    if value is None or value == -1:
        return -1, -1
    if isinstance(value, int):
        if value < 0:
            raise ModuleError(f"bad {what} {value}")
        return value, -1
    text = str(value)
    if text.isdigit():
        return int(text), -1
    try:
        pw = pwd.getpwnam(text)
    except KeyError:
        raise ModuleError(f"bad user name {text} ({what}: no such user)") from None
    return pw.pw_uid, pw.pw_gid


def resolve_group(value: Any, what: str) -> int:
    """gid of a group name or number (1.6 group2gid); -1 for "not set"."""
    if value is None or value == -1:
        return -1
    if isinstance(value, int):
        if value < 0:
            raise ModuleError(f"bad {what} {value}")
        return value
    text = str(value)
    if text.isdigit():
        return int(text)
    try:
        return grp.getgrnam(text).gr_gid
    except KeyError:
        raise ModuleError(f"bad group name {text} ({what}: no such group)") from None
