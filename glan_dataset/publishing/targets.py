"""Where a built dataset goes: the target protocol, the publish plan and the local-folder target.

Publishing is split in two so that every target behaves the same way:

1. the layout writer builds a complete *staging* folder (README, shards, taxonomy, chart, ...);
2. :func:`plan_publish` compares it with what the target holds now (sha256 per file) and says which
   files to add, update, delete or leave alone; the target then applies exactly that plan.

Because shards are written with deterministic bytes, an unchanged discipline produces identical
files, so a second publish only touches what really changed. A target never sees a token in its
``description``: that string goes into messages and logs.

The Hub target lives in :mod:`glan_dataset.publishing.hub` (``HubTarget(repo_id, **hub_options)``,
hub options: ``private``, ``create_pr``, ``revision``) and implements the same protocol.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from glan_dataset.errors import UsageError
from glan_dataset.rundir import write_bytes_atomic

HUB_SCHEME = "hf://"
DELETABLE_PREFIXES: tuple[str, ...] = ("data/", "assets/")
"""Only generated folders are pruned: a file a maintainer added by hand at the root is never deleted."""
RELEASE_NOTE = ".glan-release.json"
"""In a local release folder: the previous release's name and the carried shards (see LocalFolderTarget)."""
TAGS_DIR = "tags"
"""Local-folder tags: ``tags/<tag>.json`` records the files (and their sha256) of a release."""


class RemoteFile(BaseModel):
    """One file a target holds now. ``sha256`` is ``None`` when the target cannot tell cheaply."""

    path: str
    sha256: str | None = None
    size: int


class PublishPlan(BaseModel):
    """What a publish does, as paths relative to the repository root (each list sorted)."""

    add: list[str] = Field(default_factory=list)
    update: list[str] = Field(default_factory=list)
    delete: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)

    @property
    def changes(self) -> list[str]:
        """Files written or removed by the plan (add + update + delete)."""
        return [*self.add, *self.update, *self.delete]

    @property
    def is_empty(self) -> bool:
        return not (self.add or self.update or self.delete)


class PublishResult(BaseModel):
    """What a publish did (or would do, with ``dry_run``)."""

    target: str
    plan: PublishPlan
    commit: str | None = None
    tag: str | None = None
    url: str | None = None
    dry_run: bool = False


@runtime_checkable
class PublishTarget(Protocol):
    """A place a dataset repository can be published to (a local folder, a Hub repo)."""

    description: str
    """Human-readable name of the target for messages; never contains a token."""

    def existing_files(self) -> dict[str, RemoteFile]:
        """Every file published now, keyed by path relative to the root (empty when new)."""
        ...

    def read_file(self, path: str) -> bytes | None:
        """The current content of one published file (e.g. ``releases.json``), ``None`` if absent."""
        ...

    def publish(
        self, staging: Path, plan: PublishPlan, *, message: str, tag: str | None, dry_run: bool
    ) -> PublishResult:
        """Apply ``plan`` from ``staging``; with ``dry_run`` change nothing. Refuses an existing ``tag``."""
        ...


# --------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, streamed (shards can be hundreds of MB).

    Memoized on (path, size, mtime): a publish hashes the staging folder twice (once to learn which
    disciplines changed, once for the final plan) and a 10M-record release is ~20 GB of shards.
    """
    stat = path.stat()
    return _sha256_cached(str(path.absolute()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def staging_files(staging: Path) -> dict[str, Path]:
    """Files of a folder keyed by POSIX path relative to it; hidden files (temp files, .git) are skipped."""
    found: dict[str, Path] = {}
    for path in sorted(staging.rglob("*")):
        rel = path.relative_to(staging)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        found[rel.as_posix()] = path
    return found


def plan_publish(
    staging: Path,
    existing: dict[str, RemoteFile],
    read_remote: Callable[[str], bytes | None] | None = None,
) -> PublishPlan:
    """Compare ``staging`` with what a target holds now, file by file, by sha256.

    A remote file whose sha256 is unknown (e.g. a small non-LFS file on the Hub) is compared by
    content through ``read_remote`` when given and the sizes match, else it is updated. Files
    under ``data/`` and ``assets/`` that the staging folder no longer has are deleted (removed
    shards, a discipline dropped from the run); anything else a maintainer put there is kept.
    """
    plan = PublishPlan()
    local = staging_files(staging)
    for rel, path in local.items():
        remote = existing.get(rel)
        if remote is None:
            plan.add.append(rel)
        elif _same_content(path, remote, read_remote):
            plan.unchanged.append(rel)
        else:
            plan.update.append(rel)
    plan.delete = sorted(p for p in existing if p not in local and p.startswith(DELETABLE_PREFIXES))
    return plan


def _same_content(path: Path, remote: RemoteFile, read_remote: Callable[[str], bytes | None] | None) -> bool:
    size = path.stat().st_size
    if remote.size != size:
        return False
    if remote.sha256 is not None:
        return remote.sha256 == sha256_file(path)
    if read_remote is None:
        return False
    content = read_remote(remote.path)
    return content is not None and hashlib.sha256(content).hexdigest() == sha256_file(path)


# --------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------


def parse_target(spec: str | Path, **hub_options: Any) -> PublishTarget:
    """``hf://ORG/NAME`` -> the Hub target; anything else is a local folder path.

    ``hub_options`` (``private``, ``create_pr``, ``revision``) only make sense for the Hub; given
    with a local folder they are refused rather than silently ignored.
    """
    text = str(spec)
    if text.startswith(HUB_SCHEME):
        repo_id = text[len(HUB_SCHEME) :].strip("/")
        if "@" in repo_id:  # hf://ORG/NAME@BRANCH, as the Hub target describes itself
            repo_id, branch = repo_id.split("@", 1)
            if hub_options.get("revision") not in (None, branch):
                raise UsageError(f"{text} names branch {branch!r} but --revision is {hub_options['revision']!r}")
            hub_options = {**hub_options, "revision": branch}
        if repo_id.count("/") != 1 or not all(repo_id.split("/")):
            raise UsageError(f"bad Hub target {text!r}: use hf://ORG/NAME")
        from glan_dataset.publishing.hub import HubTarget  # lazy: huggingface_hub is only needed for the Hub

        return HubTarget(repo_id, **hub_options)
    used = sorted(name for name, value in hub_options.items() if value not in (None, False))
    if used:
        flags = ", ".join("--" + name.replace("_", "-") for name in used)
        raise UsageError(f"{flags} only apply to Hub targets (--to hf://ORG/NAME), not to the folder {text}")
    return LocalFolderTarget(Path(text))


def preflight(target_spec: str | Path, *, tag: str | None = None, **hub_options: Any) -> PublishTarget:
    """Check that a publish to ``target_spec`` can succeed before any money or time is spent on it.

    A folder: its path is a folder (or can become one) and is writable; the tag name is valid. The
    Hub: the token is there and may write to the repo (or create it), the tag is free. One-line
    errors; nothing is written. ``glan build`` calls this before generating; ``glan publish``
    before staging. Returns the parsed target.
    """
    target = parse_target(target_spec, **hub_options)
    if isinstance(target, LocalFolderTarget):
        target.check_writable(probe=True)
        if tag is not None:
            _check_tag_name(tag)
    else:
        target.preflight(tag)  # type: ignore[attr-defined]
    return target


class LocalFolderTarget:
    """A dataset repository in a local folder: ``load_dataset(str(folder), config)`` reads it.

    **Releases land all at once.** ``FOLDER`` is a symbolic link to a complete release folder in the
    hidden sibling ``.FOLDER.releases/``. A publish builds the new release beside the current one
    (``.staging-<pid>``: unchanged files are hard links, so only changed shards take disk), renames it
    to its final name, then points ``FOLDER`` at it by renaming a new link over the old one: one
    atomic ``rename(2)``. Why a link and not the files in place or a renamed folder:

    - ``load_dataset(FOLDER)`` reads ``FOLDER/README.md`` and then resolves ``FOLDER`` to its real
      path once and reads every shard through that; a reader that resolved the previous release keeps
      reading it, so the previous release folder is kept until the next publish.
    - Between those two steps the link may switch. So each release folder also holds (hard links of)
      the previous release's shards that it replaces, and every card glob names its shards' content
      digest (layout.py): a reader holding the previous card still matches exactly the previous
      shards. Those carried shards are listed in ``.glan-release.json`` and are not part of the
      release (not listed, not planned, dropped by the next publish).
    - Everything else (releases.json, the card, tags/) switches with the data, so a publish killed at
      any point leaves the previous release whole; the rerun deletes the staging and link leftovers
      and builds the release again, with no duplicate history entry.

    A folder published by an older version (a real directory) is moved into ``.FOLDER.releases/`` on
    its first publish: for that one switch there is an instant without ``FOLDER``. A tag is a
    ``tags/<tag>.json`` note listing every file's sha256 at release time (a folder has no git).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser().absolute()
        self.description = f"local folder {self.path}"
        self.releases_dir = self.path.parent.resolve() / f".{self.path.name}.releases"

    def _current(self) -> Path | None:
        """The folder holding the current release (the link's target, or a legacy real folder)."""
        if self.path.is_symlink():
            target = self.path.resolve()
            return target if target.is_dir() else None
        if self.path.is_dir():
            return self.path
        # killed while moving a legacy folder aside: it is still the current release
        legacy = sorted(self.releases_dir.glob("r-*-legacy")) if self.releases_dir.is_dir() else []
        return legacy[-1] if legacy else None

    def _release_note(self, folder: Path) -> dict[str, Any]:
        note = folder / RELEASE_NOTE
        try:
            return json.loads(note.read_text(encoding="utf-8")) if note.is_file() else {}
        except ValueError:
            return {}

    def existing_files(self) -> dict[str, RemoteFile]:
        current = self._current()
        if current is None:
            return {}
        carried = set(self._release_note(current).get("carried", []))
        return {
            rel: RemoteFile(path=rel, sha256=sha256_file(file), size=file.stat().st_size)
            for rel, file in staging_files(current).items()
            if rel not in carried
        }

    def read_file(self, path: str) -> bytes | None:
        current = self._current()
        file = current / path if current is not None else None
        return file.read_bytes() if file is not None and file.is_file() else None

    def tag_path(self, tag: str) -> Path:
        return self.path / TAGS_DIR / f"{tag}.json"

    def check_writable(self, *, probe: bool = False) -> None:
        """Refuse, in one line, a folder that cannot be published to (before any work is done).

        ``probe`` also creates and removes a temporary file in the nearest existing folder: the
        only sure test (root passes every permission check, a read-only mount fails them all).
        """
        if self.path.exists() and not self.path.is_dir():
            raise UsageError(f"cannot publish to {self.path}: it is a file, not a folder")
        for parent in [self.path.parent, *self.path.parent.parents]:
            if parent.exists() or parent.is_symlink():
                if not parent.is_dir():
                    raise UsageError(f"cannot publish to {self.path}: {parent} is a file, not a folder")
                if not os.access(parent, os.W_OK | os.X_OK):
                    raise UsageError(f"cannot publish to {self.path}: {parent} is not writable; choose another --to")
                if probe:
                    try:
                        with tempfile.TemporaryDirectory(prefix=".glan-probe-", dir=parent):
                            pass
                    except OSError as error:
                        raise UsageError(
                            f"cannot publish to {self.path}: {parent} is not writable ({error.strerror}); "
                            "choose another --to"
                        ) from None
                break

    def publish(
        self, staging: Path, plan: PublishPlan, *, message: str, tag: str | None, dry_run: bool
    ) -> PublishResult:
        self.check_writable()
        result = PublishResult(target=self.description, plan=plan, tag=tag, url=str(self.path), dry_run=dry_run)
        files = {rel: sha256_file(p) for rel, p in staging_files(staging).items()}
        if tag is not None:
            _check_tag_name(tag)
            if self.tag_path(tag).exists():
                if plan.is_empty and self._tag_files(tag) == files:
                    return result  # this exact release is already tagged (a rerun): nothing to do
                raise UsageError(f"tag {tag!r} already exists in {self.path}; choose a new --tag")
        if dry_run:
            return result
        try:
            self._land(staging, plan, files, message=message, tag=tag)
        except OSError as error:
            where = f" ({error.filename})" if error.filename else ""
            raise UsageError(
                f"cannot publish to {self.path}: {error.strerror or error}{where}; the previous release is "
                "untouched: fix the folder (space, permissions) or choose another --to, then publish again"
            ) from None
        return result

    def _land(self, staging: Path, plan: PublishPlan, files: dict[str, str], *, message: str, tag: str | None) -> None:
        """Build the release folder beside the current one and switch the link to it."""
        self.clean_leftovers()
        current = self._current()
        self.releases_dir.mkdir(parents=True, exist_ok=True)
        build = self.releases_dir / f".staging-{os.getpid()}"
        for rel in files:  # an unchanged file is the current release's (same inode, same mtime)
            source = current / rel if current is not None and rel in plan.unchanged else staging / rel
            _link_or_copy(source, build / rel)
        kept = (
            staging_files(current).items() if current is not None else ()
        )  # maintainer files and tags/: everything the plan neither writes nor deletes
        carried_before = set(self._release_note(current).get("carried", [])) if current is not None else set()
        carried = [rel for rel in plan.delete if rel.startswith("data/")]
        for rel, path in kept:
            if rel not in files and rel not in carried_before and (rel not in plan.delete or rel in carried):
                _link_or_copy(path, build / rel)
        if tag is not None:
            note = {
                "tag": tag,
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "message": message,
                "files": files,
            }
            write_bytes_atomic(build / TAGS_DIR / f"{tag}.json", (json.dumps(note, indent=2) + "\n").encode("utf-8"))
        previous = current.name if current is not None and current.parent == self.releases_dir else None
        release_note = {"previous": previous, "carried": carried}
        (build / RELEASE_NOTE).write_text(json.dumps(release_note, indent=2) + "\n", encoding="utf-8")
        _fsync_tree(build)
        final = self.releases_dir / f"r-{time.time_ns():x}"
        build.rename(final)
        self._switch(final, current)
        self.clean_leftovers()

    def _tag_files(self, tag: str) -> dict[str, str] | None:
        try:
            return json.loads(self.tag_path(tag).read_text(encoding="utf-8")).get("files")
        except (OSError, ValueError, AttributeError):
            return None

    def _switch(self, final: Path, current: Path | None) -> None:
        """Point the folder at ``final`` in one rename (a legacy real folder is moved aside first)."""
        if current is not None and current == self.path and not self.path.is_symlink():
            self.path.rename(self.releases_dir / f"r-{time.time_ns():x}-legacy")  # the one non-atomic switch
        link = self.path.parent / f".{self.path.name}.link-{os.getpid()}"
        link.unlink(missing_ok=True)
        os.symlink(os.path.relpath(final, self.path.parent), link)
        os.replace(link, self.path)
        _fsync_dir(self.path.parent)

    def clean_leftovers(self) -> None:
        """Remove what a killed publish left (staging folders, link files) and releases older than the
        previous one. A publish still running in another process keeps its staging folder."""
        for link in self.path.parent.glob(f".{glob.escape(self.path.name)}.link-*"):
            if link.is_symlink() and not _owner_alive(link.name):
                link.unlink(missing_ok=True)
        if not self.releases_dir.is_dir():
            return
        current = self._current()
        keep = set()
        if current is not None and current.parent == self.releases_dir:
            keep = {current.name, self._release_note(current).get("previous")}
        for entry in self.releases_dir.iterdir():
            if entry.name in keep or (entry.name.startswith(".staging-") and _owner_alive(entry.name)):
                continue
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)


def _owner_alive(name: str) -> bool:
    """Whether the process named by a ``...-<pid>`` leftover is another live process."""
    pid = name.rsplit("-", 1)[-1]
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _check_tag_name(tag: str) -> None:
    if not tag or tag.startswith(".") or any(c in tag for c in "/\\ \t\n") or ".." in tag:
        raise UsageError(f"bad tag {tag!r}: use something like v1.0 (no spaces or slashes)")


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link when both sit on one disk (release folders share unchanged shards), else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _fsync_tree(root: Path) -> None:
    """Flush a release folder before it becomes visible: a crash must not publish empty files."""
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(root)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
