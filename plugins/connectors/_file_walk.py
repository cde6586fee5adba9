"""Which files a ``files`` source holds: a glob walked once per real file, never round a directory loop.

``glob.glob(recursive=True)`` follows a directory symlink that points back up (``self -> .``) until
the path is too long, so every file comes back dozens of times, and two such loops make the walk
exponential. This walk follows symlinks but enters each real directory (device + inode) once and
lists each real file once; it visits directories reached without a symlink before those reached
through one, so a file keeps its plain path when an alias to its folder appears later (the cursor
names files by path). It stops with an error past ``limit`` files or directories.
"""

from __future__ import annotations

import heapq
import logging
import os
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

log = logging.getLogger("plugins.connectors.files")

MAGIC = frozenset("*?[")


class WalkLimitError(Exception):
    """The walk passed its bound of files or directories."""


def has_magic(path: str) -> bool:
    """Whether a path is a glob pattern."""
    return any(char in MAGIC for char in path)


def _split(pattern: str) -> tuple[str, list[str]]:
    """The folder the walk starts in (the pattern's leading plain parts) and the parts left to match."""
    parts = pattern.split(os.sep)
    plain: list[str] = []
    for part in parts[:-1]:
        if has_magic(part):
            break
        plain.append(part)
    root = os.sep.join(plain) or ("." if not pattern.startswith(os.sep) else os.sep)
    if pattern.startswith(os.sep) and not plain[1:]:
        root = os.sep
    return root, parts[len(plain):]


def _matches(name: str, part: str) -> bool:
    """``fnmatch`` as ``glob`` applies it: a wildcard never matches a leading dot."""
    if name.startswith(".") and not part.startswith("."):
        return False
    return fnmatchcase(name, part)


def _closure(states: frozenset[int], parts: list[str]) -> frozenset[int]:
    """Add the states ``**`` reaches by matching no folder at all."""
    out = set(states)
    for state in sorted(states):
        index = state
        while index < len(parts) and parts[index] == "**":
            index += 1
            out.add(index)
    return frozenset(out)


def _advance(states: frozenset[int], name: str, parts: list[str]) -> frozenset[int]:
    """The pattern positions after matching one more path part ``name``."""
    nxt: set[int] = set()
    for state in states:
        if state >= len(parts):
            continue
        part = parts[state]
        if part == "**":
            if not name.startswith("."):
                nxt.add(state)  # ``**`` takes this folder and may take more
        elif _matches(name, part):
            nxt.add(state + 1)
    return _closure(frozenset(nxt), parts)


@dataclass
class Walk:
    """One walk: each real directory entered once, each real file listed once (under its plainest path)."""

    parts: list[str]
    limit: int
    files: dict[tuple[int, int], tuple[int, str]] = field(default_factory=dict)
    entered: set[tuple[int, int]] = field(default_factory=set)
    skipped_links: list[str] = field(default_factory=list)

    def run(self, root: str) -> list[str]:
        """The matching files under ``root``, sorted by path."""
        # (symlinks on the way, path, was it reached through a link, pattern states): folders are
        # entered fewest links first, so a folder reached both plainly and through a link is entered
        # (and its files named) by its plain path; a folder already entered is not entered again
        queue: list[tuple[int, str, bool, frozenset[int]]] = [(0, root, False, _closure(frozenset({0}), self.parts))]
        while queue:
            links, folder, is_link, states = heapq.heappop(queue)
            try:
                info = os.stat(folder)
            except OSError:
                continue
            key = (info.st_dev, info.st_ino)
            if key in self.entered:
                if is_link:
                    self.skipped_links.append(folder)
                continue
            self._count()
            self.entered.add(key)
            for entry in _entries(folder):
                after = _advance(states, entry.name, self.parts)
                if after:
                    self._visit(entry, links, after, queue)
        return sorted(path for _, path in self.files.values())

    def _visit(self, entry: os.DirEntry[str], links: int, states: frozenset[int],
               queue: list[tuple[int, str, bool, frozenset[int]]]) -> None:
        try:
            is_link = entry.is_symlink()
            info = entry.stat()  # follows a symlink; a broken one raises
        except OSError:
            return
        hops = links + is_link
        if entry.is_dir():
            if any(state < len(self.parts) for state in states):
                heapq.heappush(queue, (hops, entry.path, is_link, states))
            return
        key = (info.st_dev, info.st_ino)
        if len(self.parts) in states and entry.is_file():
            if key not in self.files:
                self._count()
            # the path with the fewest symlinks on the way names the file (then the first in order)
            self.files[key] = min(self.files.get(key, (hops, entry.path)), (hops, entry.path))

    def _count(self) -> None:
        if len(self.files) + len(self.entered) >= self.limit:
            raise WalkLimitError(f"the walk passed max_files ({self.limit} files and folders)")


def _entries(folder: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda entry: entry.name)
    except OSError:  # removed meanwhile, or not readable: nothing to list there
        return []


def walk_glob(pattern: str, limit: int) -> tuple[list[str], list[str]]:
    """The files matching ``pattern`` (each real file once, sorted) and the directory links not followed."""
    root, parts = _split(pattern)
    walk = Walk(parts, limit)
    found = walk.run(root)
    if root == "." and not pattern.startswith("." + os.sep):
        found = [path[2:] if path.startswith("." + os.sep) else path for path in found]
    return found, walk.skipped_links


def unique_files(paths: list[str], limit: int) -> list[str]:
    """``paths`` (files of one folder) with a second path to the same real file dropped, sorted.

    A file is named by a path that is not a symlink where it has one. With the folder itself,
    more than ``limit`` files and folders is an error, as for a walk.
    """
    kept: dict[tuple[int, int], tuple[bool, str]] = {}
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            continue
        key = (info.st_dev, info.st_ino)
        if key not in kept and len(kept) + 1 >= limit:
            raise WalkLimitError(f"the walk passed max_files ({limit} files and folders)")
        kept[key] = min(kept.get(key, (True, path)), (os.path.islink(path), path))
    return sorted(path for _, path in kept.values())
