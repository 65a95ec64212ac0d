"""Files that hold the store or its key are the owner's alone: folders 0700, files 0600.

SQLite creates its ``-wal`` and ``-shm`` files with the mode of the database file, so a
database created 0600 keeps its companions private too.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_file(path: Path) -> None:
    """Create ``path`` empty if it does not exist, and make it the owner's alone."""
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
    _chmod(path, PRIVATE_FILE)


def secure_tree(folder: Path) -> None:
    """Tighten a folder an older version left readable by others, and all it holds."""
    if not folder.is_dir():
        return
    _chmod(folder, PRIVATE_DIR)
    for parent, dirs, files in os.walk(folder):
        for name in dirs:
            _chmod(Path(parent, name), PRIVATE_DIR)
        for name in files:
            _chmod(Path(parent, name), PRIVATE_FILE)


def _chmod(path: Path, mode: int) -> None:
    try:
        current = path.lstat()
        if stat.S_ISLNK(current.st_mode):
            return  # a link's target is not ours to change
        if stat.S_IMODE(current.st_mode) & ~mode:
            os.chmod(path, stat.S_IMODE(current.st_mode) & mode)
    except FileNotFoundError:
        pass  # a -wal or -shm file that SQLite removed meanwhile
    except PermissionError:
        pass  # not the owner (a shared checkout): nothing this process may fix
