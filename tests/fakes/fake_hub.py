"""A loopback fake of the Hugging Face Hub for the real ``huggingface_hub`` client and ``datasets``.

Why a fake server rather than mocks: the publisher's correctness lives in the *protocol* — preupload
modes, LFS batch + upload, the ndjson commit with ``parentCommit``, refs, tree pagination, resolve
headers — and in what ``datasets.load_dataset`` does with them. Driving the real client (2.x, httpx2)
against a server with git-like semantics catches the mistakes a mock would happily accept.

What it keeps (in memory): dataset repos with commits (sha1 ids, parent chain, the full file map per
commit, the operations each commit applied), branches, tags and pull-request refs (``refs/pr/N``),
and an LFS object store keyed by sha256 (uploads are verified against their oid and size).

Endpoints (the ones huggingface_hub 2.4 / datasets 5.2 call; anything else answers 404 and is
recorded in :attr:`FakeHub.unhandled` so a test can assert the client did nothing unexpected):

- ``GET /api/whoami-v2``, ``POST /api/validate-yaml``, ``GET /api/agent-harnesses``
- ``POST /api/repos/create`` (409 *with* ``url`` when the repo exists: ``create_repo(exist_ok=True)``
  reads it), ``DELETE /api/repos/delete``
- ``GET /api/datasets/{repo}[/revision/{rev}]`` (``sha``, ``siblings``; sizes/LFS with ``blobs=1``)
- ``GET /api/datasets/{repo}/refs[?include_prs=1]``, ``GET /api/datasets/{repo}/commits/{rev}``
- ``POST|DELETE /api/datasets/{repo}/branch/{branch}``, ``POST /api/datasets/{repo}/tag/{rev}``,
  ``DELETE /api/datasets/{repo}/tag/{tag}``
- ``GET /api/datasets/{repo}/tree/{rev}[/{path}]`` (recursive, Link-header pagination),
  ``POST /api/datasets/{repo}/paths-info/{rev}`` (form-encoded ``paths``)
- ``POST /api/datasets/{repo}/preupload/{rev}`` (``lfs`` per the repo's ``.gitattributes`` or binary
  content, else ``regular``; ``oid`` of the current file so the client skips unchanged files)
- ``POST /datasets/{repo}.git/info/lfs/objects/batch`` (basic transfer), ``PUT /lfs-upload/{oid}``,
  ``POST /lfs-verify/{oid}``
- ``POST /api/datasets/{repo}/commit/{rev}[?create_pr=1]`` (ndjson: header / file / lfsFile /
  deletedFile / deletedFolder; 412 when ``parentCommit`` is not the branch head; all-or-nothing)
- ``GET|HEAD /datasets/{repo}/resolve/{rev}/{path}`` (ETag, X-Repo-Commit, X-Linked-Etag/-Size for
  LFS files, Content-Length, byte ranges)

Writes need ``Authorization: Bearer <token>`` with the fake's token; reads of public repos don't.
Only dataset repos are implemented (the project publishes nothing else).
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import hashlib
import itertools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlencode

import yaml
from aiohttp import web

DEFAULT_TOKEN = "hf_fakeTokenForTests0123456789abcdef"
"""The token the fake accepts; tests assert it never shows up in any output."""

DEFAULT_GITATTRIBUTES = """\
*.7z filter=lfs diff=lfs merge=lfs -text
*.arrow filter=lfs diff=lfs merge=lfs -text
*.bin filter=lfs diff=lfs merge=lfs -text
*.gz filter=lfs diff=lfs merge=lfs -text
*.parquet filter=lfs diff=lfs merge=lfs -text
*.zip filter=lfs diff=lfs merge=lfs -text
*.zst filter=lfs diff=lfs merge=lfs -text
# Image files - uncompressed
*.png filter=lfs diff=lfs merge=lfs -text
*.jpg filter=lfs diff=lfs merge=lfs -text
*.jpeg filter=lfs diff=lfs merge=lfs -text
"""
"""What the real Hub puts in a new dataset repo's first commit (abridged): parquet and png are LFS."""

REGULAR_MAX_SIZE = 10 * 1024 * 1024
"""Above this the real Hub refuses regular (non-LFS) files; the fake answers ``lfs`` instead."""

OpKind = Literal["file", "lfsFile", "deletedFile", "deletedFolder"]


# ---------------------------------------------------------------------------------------------
# Git-like model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Blob:
    """A file's content as stored in a commit; ``lfs`` files are stored by sha256 like the Hub does."""

    content: bytes
    lfs: bool

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def pointer(self) -> bytes:
        """The git-lfs pointer file git stores instead of the content."""
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {self.size}\n".encode()

    @property
    def git_oid(self) -> str:
        """The git blob id: of the content for regular files, of the pointer for LFS files (as on the Hub)."""
        stored = self.pointer if self.lfs else self.content
        return hashlib.sha1(b"blob %d\0" % len(stored) + stored).hexdigest()

    @property
    def etag(self) -> str:
        """What ``resolve`` answers as ETag: sha256 for LFS files, the git blob id otherwise."""
        return self.sha256 if self.lfs else self.git_oid


@dataclass(frozen=True)
class CommitOp:
    """One line of a received commit payload (what a test asserts "the commit holds")."""

    kind: OpKind
    path: str


@dataclass
class Commit:
    oid: str
    parents: tuple[str, ...]
    title: str
    description: str
    files: dict[str, Blob]
    operations: list[CommitOp]
    date: str
    pull_request: int | None = None

    @property
    def changed_paths(self) -> set[str]:
        """Paths added, updated or deleted by this commit."""
        return {op.path for op in self.operations}


@dataclass
class Repo:
    repo_id: str
    private: bool
    created_at: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    pull_requests: dict[int, str] = field(default_factory=dict)

    def resolve(self, revision: str | None) -> str | None:
        """Commit oid a revision names (branch, tag, ``refs/...``, ``refs/pr/N`` or full sha), or None."""
        rev = revision or "main"
        if rev in self.branches:
            return self.branches[rev]
        if rev in self.tags:
            return self.tags[rev]
        if rev.startswith("refs/heads/"):
            return self.branches.get(rev.removeprefix("refs/heads/"))
        if rev.startswith("refs/tags/"):
            return self.tags.get(rev.removeprefix("refs/tags/"))
        if match := re.fullmatch(r"refs/pr/(\d+)", rev):
            return self.pull_requests.get(int(match.group(1)))
        if re.fullmatch(r"[0-9a-f]{40}", rev) and rev in self.commits:
            return rev
        return None

    def history(self, oid: str) -> list[Commit]:
        """First-parent history from ``oid``, newest first."""
        out: list[Commit] = []
        current: str | None = oid
        while current is not None:
            commit = self.commits[current]
            out.append(commit)
            current = commit.parents[0] if commit.parents else None
        return out

    def lfs_patterns(self, oid: str | None) -> list[str]:
        """``filter=lfs`` patterns of the ``.gitattributes`` at a commit: the Hub's upload-mode rule."""
        blob = self.commits[oid].files.get(".gitattributes") if oid else None
        text = blob.content.decode("utf-8", "replace") if blob else DEFAULT_GITATTRIBUTES
        return [line.split()[0] for line in text.splitlines() if "filter=lfs" in line and not line.startswith("#")]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    authorized: bool
    kind: str
    mutating: bool


class HubHTTPError(Exception):
    """Raised inside a handler; becomes an HTTP error response with the Hub's error headers."""

    def __init__(self, status: int, message: str, error_code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code
        self.extra = extra


MUTATING_KINDS = frozenset(
    {
        "create_repo",
        "delete_repo",
        "lfs_batch",
        "lfs_upload",
        "lfs_verify",
        "commit",
        "create_branch",
        "delete_branch",
        "create_tag",
        "delete_tag",
    }
)
"""Request kinds that change the fake's state or upload content (a dry run sends none of them)."""


# ---------------------------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------------------------


class FakeHub:
    """The fake Hub: start it, point ``HF_ENDPOINT`` (or ``HfApi(endpoint=...)``) at :attr:`url`.

    Runs an aiohttp server on ``127.0.0.1`` in a daemon thread with its own event loop so that the
    synchronous client in the test thread can talk to it. All state lives in memory.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        user: str = "fake-user",
        orgs: tuple[str, ...] = ("org",),
        page_size: int = 1000,
        port: int = 0,
    ) -> None:
        self.token = token
        self.user = user
        self.orgs = orgs
        self.page_size = page_size
        self.repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.requests: list[RecordedRequest] = []
        self.unhandled: list[str] = []
        self.blocked_connections: list[str] = []
        self.token_role = "write"
        """What whoami says of the token (``read`` or ``write``); a ``read`` token gets 403 on every write."""
        self.org_roles: dict[str, str] = {}
        """Org -> the user's role in it (``read``, ``contributor``, ``write``, ``admin``; default ``write``):
        a ``read`` member gets 403 when writing to the org's repos."""
        self.fail_next: dict[str, int] = {}
        """Request kind -> HTTP status: the next request of that kind fails with it (once), e.g.
        ``{"create_tag": 500}`` to stop a publish between its commit and its tag."""
        self.before_commit: Callable[[str, str], None] | None = None
        """Test hook run inside a commit request before its parent is checked, with (repo_id, revision):
        lets a test land a concurrent push in the window between the client's checks and its commit."""
        """Filled by the test network guard (tests/fakes/hub_fixture.py): attempts to leave loopback."""
        self._port = port
        self._lock = threading.RLock()
        self._counter = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> FakeHub:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                app = web.Application(client_max_size=1024**3)
                app.router.add_route("*", "/{tail:.*}", self._dispatch)
                runner = web.AppRunner(app, access_log=None)
                loop.run_until_complete(runner.setup())
                site = web.TCPSite(runner, "127.0.0.1", self._port)
                loop.run_until_complete(site.start())
                self._runner = runner
                self._port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            except BaseException as exc:  # surfaced to start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-hub", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = None
        self._thread = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget every repo, object and recorded request (between tests sharing one server)."""
        with self._lock:
            self.repos.clear()
            self.lfs_objects.clear()
            self.requests.clear()
            self.unhandled.clear()
            self.blocked_connections = []
            self.before_commit = None
            self.token_role = "write"
            self.org_roles = {}
            self.fail_next = {}

    # -- inspection helpers for tests -------------------------------------------------------

    def repo(self, repo_id: str) -> Repo:
        return self.repos[repo_id]

    def head(self, repo_id: str, revision: str = "main") -> str:
        oid = self.repos[repo_id].resolve(revision)
        if oid is None:
            raise KeyError(f"{repo_id}@{revision}")
        return oid

    def commit(self, repo_id: str, revision: str = "main") -> Commit:
        return self.repos[repo_id].commits[self.head(repo_id, revision)]

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        return {path: blob.content for path, blob in self.commit(repo_id, revision).files.items()}

    def history(self, repo_id: str, revision: str = "main") -> list[Commit]:
        return self.repos[repo_id].history(self.head(repo_id, revision))

    def mutating_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.mutating]

    def push_direct(
        self, repo_id: str, files: dict[str, bytes], *, branch: str = "main", title: str = "concurrent push"
    ) -> str:
        """Commit straight into the store, as another user pushing at the same time would."""
        with self._lock:
            repo = self.repos[repo_id]
            parent = repo.branches[branch]
            tree = dict(repo.commits[parent].files)
            patterns = repo.lfs_patterns(parent)
            ops = []
            for path, content in files.items():
                tree[path] = Blob(content, lfs=_is_lfs(path, content, patterns))
                ops.append(CommitOp("lfsFile" if tree[path].lfs else "file", path))
            commit = self._new_commit(repo, (parent,), title, "", tree, ops)
            repo.branches[branch] = commit.oid
            return commit.oid

    # -- internals --------------------------------------------------------------------------

    def _new_commit(
        self,
        repo: Repo,
        parents: tuple[str, ...],
        title: str,
        description: str,
        files: dict[str, Blob],
        operations: list[CommitOp],
        pull_request: int | None = None,
    ) -> Commit:
        seed = json.dumps(
            [repo.repo_id, parents, title, sorted((p, b.git_oid) for p, b in files.items()), next(self._counter)]
        )
        oid = hashlib.sha1(seed.encode()).hexdigest()
        commit = Commit(oid, parents, title, description, files, operations, _now(), pull_request)
        repo.commits[oid] = commit
        return commit

    def _base(self, request: web.Request) -> str:
        return f"http://{request.host}"

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "") == f"Bearer {self.token}"

    def _require_write(self, request: web.Request, repo_id: str) -> None:
        header = request.headers.get("Authorization")
        if not header:
            raise HubHTTPError(401, "You must be authenticated to do this", None)
        if header != f"Bearer {self.token}":
            raise HubHTTPError(401, "Invalid credentials in Authorization header")
        namespace = repo_id.split("/", 1)[0]
        read_only = self.token_role == "read" or self.org_roles.get(namespace) == "read"
        if read_only or (namespace != self.user and namespace not in self.orgs):
            raise HubHTTPError(403, f"You don't have the rights to create or write to {repo_id}")

    def _get_repo(self, request: web.Request, repo_id: str) -> Repo:
        repo = self.repos.get(repo_id)
        if repo is None or (repo.private and not self._authorized(request)):
            raise HubHTTPError(404, "Repository not found", "RepoNotFound")
        return repo

    def _resolve(self, repo: Repo, revision: str) -> str:
        oid = repo.resolve(revision)
        if oid is None:
            raise HubHTTPError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return oid

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raw = request.rel_url.raw_path
        segments = [s for s in raw.split("/")[1:]]
        kind = "unknown"
        try:
            kind, handler, args = self._route(request.method, segments)
            body = await request.read()
            with self._lock:
                status = self.fail_next.pop(kind, None)
                if status is not None:
                    raise HubHTTPError(status, f"fake Hub: injected failure of {kind}")
                response = handler(request, body, *args)
        except HubHTTPError as err:
            payload = {"error": err.message, **err.extra}
            headers = {"X-Error-Message": " ".join(err.message.split())}  # a header is one line
            if err.error_code:
                headers["X-Error-Code"] = err.error_code
            response = web.json_response(payload, status=err.status, headers=headers)
        except Exception as exc:  # a bug in the fake (or a payload it does not understand): make it visible
            self.unhandled.append(f"500 {request.method} {unquote(raw)}: {exc!r}")
            response = web.json_response({"error": f"fake Hub failure: {exc!r}"}, status=500)
        finally:
            self.requests.append(
                RecordedRequest(
                    request.method,
                    unquote(raw),
                    request.rel_url.raw_query_string,
                    self._authorized(request),
                    kind,
                    kind in MUTATING_KINDS,
                )
            )
        return response

    def _route(self, method: str, seg: list[str]) -> tuple[str, Any, tuple[Any, ...]]:
        """(kind, handler, args) for a request, from its still-percent-encoded path segments."""
        n = len(seg)
        if seg[:2] == ["api", "whoami-v2"] and method == "GET":
            return "whoami", self._whoami, ()
        if seg[:2] == ["api", "validate-yaml"] and method == "POST":
            return "validate_yaml", self._validate_yaml, ()
        if seg[:2] == ["api", "agent-harnesses"]:
            return "agent_harnesses", lambda *_: web.json_response({"standardEnvVars": [], "harnesses": {}}), ()
        if seg[:3] == ["api", "repos", "create"] and method == "POST":
            return "create_repo", self._create_repo, ()
        if seg[:3] == ["api", "repos", "delete"] and method == "DELETE":
            return "delete_repo", self._delete_repo, ()
        if n >= 4 and seg[:2] == ["api", "datasets"]:
            repo_id = f"{unquote(seg[2])}/{unquote(seg[3])}"
            rest = seg[4:]
            action = rest[0] if rest else ""
            rev = unquote(rest[1]) if len(rest) > 1 else "main"
            tail = "/".join(unquote(s) for s in rest[2:])
            if not rest and method == "GET":
                return "repo_info", self._repo_info, (repo_id, None)
            if action == "revision" and method == "GET":
                return "repo_info", self._repo_info, (repo_id, "/".join(unquote(s) for s in rest[1:]))
            if action == "refs" and method == "GET":
                return "list_refs", self._refs, (repo_id,)
            if action == "commits" and method == "GET":
                return "list_commits", self._commits, (repo_id, rev)
            if action == "tree" and method == "GET":
                return "list_tree", self._tree, (repo_id, rev, tail)
            if action == "paths-info" and method == "POST":
                return "paths_info", self._paths_info, (repo_id, rev)
            if action == "preupload" and method == "POST":
                return "preupload", self._preupload, (repo_id, rev)
            if action == "commit" and method == "POST":
                return "commit", self._commit, (repo_id, rev)
            if action == "branch" and method in ("POST", "DELETE"):
                kind = "create_branch" if method == "POST" else "delete_branch"
                return kind, self._branch, (repo_id, rev)
            if action == "tag" and method in ("POST", "DELETE"):
                kind = "create_tag" if method == "POST" else "delete_tag"
                return kind, self._tag, (repo_id, rev)
        if n >= 5 and seg[0] == "datasets" and seg[3] == "resolve" and method in ("GET", "HEAD"):
            repo_id = f"{unquote(seg[1])}/{unquote(seg[2])}"
            path = "/".join(unquote(s) for s in seg[5:])
            return "resolve", self._resolve_file, (repo_id, unquote(seg[4]), path)
        if (
            n >= 7
            and seg[0] == "datasets"
            and seg[2].endswith(".git")
            and seg[3:] == ["info", "lfs", "objects", "batch"]
        ):
            repo_id = f"{unquote(seg[1])}/{unquote(seg[2]).removesuffix('.git')}"
            return "lfs_batch", self._lfs_batch, (repo_id,)
        if n == 2 and seg[0] == "lfs-upload" and method == "PUT":
            return "lfs_upload", self._lfs_upload, (seg[1],)
        if n == 2 and seg[0] == "lfs-verify" and method == "POST":
            return "lfs_verify", self._lfs_verify, (seg[1],)
        self.unhandled.append(f"{method} /{'/'.join(seg)}")
        raise HubHTTPError(404, f"fake Hub: no route for {method} /{'/'.join(seg)}")

    # -- account ----------------------------------------------------------------------------

    def _whoami(self, request: web.Request, body: bytes) -> web.Response:
        if not self._authorized(request):
            raise HubHTTPError(401, "Invalid credentials in Authorization header")
        return web.json_response(
            {
                "type": "user",
                "name": self.user,
                "fullname": "Fake User",
                "orgs": [
                    {"name": org, "type": "org", "roleInOrg": self.org_roles.get(org, "write")} for org in self.orgs
                ],
                "auth": {"type": "access_token", "accessToken": {"displayName": "fake", "role": self.token_role}},
            }
        )

    def _validate_yaml(self, request: web.Request, body: bytes) -> web.Response:
        content = json.loads(body or b"{}").get("content", "")
        match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, re.S)
        if match:
            try:
                data = yaml.safe_load(match.group(1))
            except yaml.YAMLError as exc:
                raise HubHTTPError(400, "Invalid YAML", errors=[{"message": f"invalid YAML: {exc}"}]) from None
            if data is not None and not isinstance(data, dict):
                raise HubHTTPError(400, "Invalid YAML", errors=[{"message": "metadata must be a mapping"}])
        return web.json_response({"errors": [], "warnings": []})

    # -- repos ------------------------------------------------------------------------------

    def _create_repo(self, request: web.Request, body: bytes) -> web.Response:
        payload = json.loads(body or b"{}")
        if payload.get("type") != "dataset":
            raise HubHTTPError(400, "the fake Hub only hosts dataset repos")
        repo_id = f"{payload.get('organization') or self.user}/{payload['name']}"
        self._require_write(request, repo_id)
        url = f"{self._base(request)}/datasets/{repo_id}"
        if repo_id in self.repos:
            raise HubHTTPError(409, "You already created this dataset repo", url=url)
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        repo = Repo(repo_id, private, _now())
        files = {".gitattributes": Blob(DEFAULT_GITATTRIBUTES.encode(), lfs=False)}
        first = self._new_commit(repo, (), "initial commit", "", files, [CommitOp("file", ".gitattributes")])
        repo.branches["main"] = first.oid
        self.repos[repo_id] = repo
        return web.json_response({"url": url, "name": repo_id, "id": repo_id})

    def _delete_repo(self, request: web.Request, body: bytes) -> web.Response:
        payload = json.loads(body or b"{}")
        repo_id = f"{payload.get('organization') or self.user}/{payload['name']}"
        self._require_write(request, repo_id)
        if self.repos.pop(repo_id, None) is None:
            raise HubHTTPError(404, "Repository not found", "RepoNotFound")
        return web.json_response({})

    def _repo_info(self, request: web.Request, body: bytes, repo_id: str, revision: str | None) -> web.Response:
        repo = self._get_repo(request, repo_id)
        oid = self._resolve(repo, revision or "main")
        commit = repo.commits[oid]
        blobs = request.query.get("blobs", "").lower() in ("1", "true")
        siblings = []
        for path, blob in sorted(commit.files.items()):
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:
                sibling.update(size=blob.size, blobId=blob.git_oid)
                if blob.lfs:
                    sibling["lfs"] = {"size": blob.size, "sha256": blob.sha256, "pointerSize": len(blob.pointer)}
            siblings.append(sibling)
        card = commit.files.get("README.md")
        return web.json_response(
            {
                "_id": hashlib.md5(repo_id.encode()).hexdigest()[:24],
                "id": repo_id,
                "author": repo_id.split("/")[0],
                "sha": oid,
                "private": repo.private,
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "createdAt": repo.created_at,
                "lastModified": commit.date,
                "cardData": _front_matter(card.content) if card else None,
                "siblings": siblings,
            }
        )

    def _refs(self, request: web.Request, body: bytes, repo_id: str) -> web.Response:
        repo = self._get_repo(request, repo_id)

        def ref(name: str, full: str, oid: str) -> dict[str, str]:
            return {"name": name, "ref": full, "targetCommit": oid}

        data: dict[str, Any] = {
            "branches": [ref(b, f"refs/heads/{b}", oid) for b, oid in sorted(repo.branches.items())],
            "tags": [ref(t, f"refs/tags/{t}", oid) for t, oid in sorted(repo.tags.items())],
            "converts": [],
        }
        if request.query.get("include_prs"):
            data["pullRequests"] = [
                ref(f"refs/pr/{n}", f"refs/pr/{n}", oid) for n, oid in sorted(repo.pull_requests.items())
            ]
        return web.json_response(data)

    def _commits(self, request: web.Request, body: bytes, repo_id: str, rev: str) -> web.Response:
        repo = self._get_repo(request, repo_id)
        oid = self._resolve(repo, rev)
        return web.json_response(
            [
                {
                    "id": c.oid,
                    "authors": [{"user": self.user}],
                    "date": c.date,
                    "title": c.title,
                    "message": c.description,
                }
                for c in repo.history(oid)
            ]
        )

    def _branch(self, request: web.Request, body: bytes, repo_id: str, branch: str) -> web.Response:
        self._require_write(request, repo_id)
        repo = self._get_repo(request, repo_id)
        if request.method == "DELETE":
            if branch not in repo.branches:
                raise HubHTTPError(404, f"Branch {branch} not found", "RevisionNotFound")
            if branch == "main":
                raise HubHTTPError(403, "Cannot delete the default branch")
            del repo.branches[branch]
            return web.json_response({})
        if branch in repo.branches:
            raise HubHTTPError(409, f"Reference already exists: refs/heads/{branch}")
        start = json.loads(body or b"{}").get("startingPoint") or "main"
        repo.branches[branch] = self._resolve(repo, start)
        return web.json_response({})

    def _tag(self, request: web.Request, body: bytes, repo_id: str, rev_or_tag: str) -> web.Response:
        self._require_write(request, repo_id)
        repo = self._get_repo(request, repo_id)
        if request.method == "DELETE":
            if repo.tags.pop(rev_or_tag, None) is None:
                raise HubHTTPError(404, f"Tag {rev_or_tag} not found", "RevisionNotFound")
            return web.json_response({})
        tag = json.loads(body or b"{}").get("tag")
        if not tag:
            raise HubHTTPError(400, "tag is required")
        if tag in repo.tags:
            raise HubHTTPError(409, f"Tag {tag} already exists")
        repo.tags[tag] = self._resolve(repo, rev_or_tag)
        return web.json_response({})

    # -- listing ----------------------------------------------------------------------------

    def _entries(self, commit: Commit, base: str, recursive: bool) -> list[dict[str, Any]] | None:
        """Tree entries under ``base`` ('' = root) like the Hub: folders and files, folders first."""
        prefix = f"{base}/" if base else ""
        if base and base in commit.files:
            return None  # a file, not a folder
        folders: set[str] = set()
        files: list[str] = []
        for path in commit.files:
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix) :]
            parts = rest.split("/")
            if len(parts) == 1:
                files.append(path)
            else:
                upto = len(parts) - 1 if recursive else 1
                for i in range(1, upto + 1):
                    folders.add(prefix + "/".join(parts[:i]))
                if recursive:
                    files.append(path)
        if base and not folders and not files:
            return None
        out = [self._folder_entry(commit, f) for f in sorted(folders)]
        out += [_file_entry(f, commit.files[f]) for f in sorted(files)]
        return out

    def _folder_entry(self, commit: Commit, folder: str) -> dict[str, Any]:
        inner = sorted((p, b.git_oid) for p, b in commit.files.items() if p.startswith(folder + "/"))
        return {
            "type": "directory",
            "oid": hashlib.sha1(json.dumps(inner).encode()).hexdigest(),
            "size": 0,
            "path": folder,
        }

    def _tree(self, request: web.Request, body: bytes, repo_id: str, rev: str, path: str) -> web.Response:
        repo = self._get_repo(request, repo_id)
        commit = repo.commits[self._resolve(repo, rev)]
        recursive = request.query.get("recursive", "").lower() in ("1", "true")
        expand = request.query.get("expand", "").lower() in ("1", "true")
        entries = self._entries(commit, path.strip("/"), recursive)
        if entries is None:
            raise HubHTTPError(404, f"{path} does not exist on {rev}", "EntryNotFound")
        if expand:
            for entry in entries:
                entry["lastCommit"] = {"id": commit.oid, "title": commit.title, "date": commit.date}
        size = min(self.page_size, 50) if expand else self.page_size
        cursor = int(request.query.get("cursor", "0"))
        page = entries[cursor : cursor + size]
        headers = {}
        if cursor + size < len(entries):
            query = {k: v for k, v in request.query.items() if k != "cursor"} | {"cursor": str(cursor + size)}
            next_url = f"{self._base(request)}{request.rel_url.raw_path}?{urlencode(query)}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        return web.json_response(page, headers=headers)

    def _paths_info(self, request: web.Request, body: bytes, repo_id: str, rev: str) -> web.Response:
        repo = self._get_repo(request, repo_id)
        commit = repo.commits[self._resolve(repo, rev)]
        form = parse_qs(body.decode(), keep_blank_values=True)
        if not form and body.strip().startswith(b"{"):
            form = {k: v if isinstance(v, list) else [v] for k, v in json.loads(body).items()}
        out = []
        for path in form.get("paths", []):
            path = str(path).strip("/")
            if path in commit.files:
                out.append(_file_entry(path, commit.files[path]))
            elif any(p.startswith(path + "/") for p in commit.files):
                out.append(self._folder_entry(commit, path))
        return web.json_response(out)

    # -- upload -----------------------------------------------------------------------------

    def _preupload(self, request: web.Request, body: bytes, repo_id: str, rev: str) -> web.Response:
        self._require_write(request, repo_id)
        repo = self._get_repo(request, repo_id)
        oid = repo.resolve(rev)
        if oid is None:
            raise HubHTTPError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        patterns = repo.lfs_patterns(oid)
        current = repo.commits[oid].files
        files = []
        for item in json.loads(body)["files"]:
            sample = base64.b64decode(item.get("sample", ""))
            lfs = _is_lfs(item["path"], sample, patterns) or int(item.get("size", 0)) > REGULAR_MAX_SIZE
            existing = current.get(item["path"])
            remote_oid = None
            if existing is not None and existing.lfs == lfs:
                remote_oid = existing.sha256 if lfs else existing.git_oid
            files.append(
                {
                    "path": item["path"],
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": False,
                    "oid": remote_oid,
                }
            )
        return web.json_response({"files": files, "commitOid": oid})

    def _lfs_batch(self, request: web.Request, body: bytes, repo_id: str) -> web.Response:
        self._require_write(request, repo_id)
        self._get_repo(request, repo_id)
        payload = json.loads(body)
        if payload.get("operation") != "upload":
            raise HubHTTPError(400, "the fake Hub only implements LFS uploads")
        if "basic" not in payload.get("transfers", ["basic"]):
            raise HubHTTPError(400, "the fake Hub only implements the basic LFS transfer")
        objects = []
        for obj in payload["objects"]:
            entry: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.lfs_objects:
                base = self._base(request)
                entry["actions"] = {
                    "upload": {"href": f"{base}/lfs-upload/{obj['oid']}?size={obj['size']}"},
                    "verify": {"href": f"{base}/lfs-verify/{obj['oid']}"},
                }
            objects.append(entry)
        return web.json_response(
            {"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
            content_type="application/vnd.git-lfs+json",
        )

    def _lfs_upload(self, request: web.Request, body: bytes, oid: str) -> web.Response:
        # Like a presigned S3 URL: no Authorization header is sent (or needed) here.
        if hashlib.sha256(body).hexdigest() != oid:
            raise HubHTTPError(400, f"uploaded content does not match oid {oid}")
        if "size" in request.query and int(request.query["size"]) != len(body):
            raise HubHTTPError(400, f"uploaded size {len(body)} != announced {request.query['size']}")
        self.lfs_objects[oid] = body
        return web.Response(status=200, headers={"ETag": f'"{oid}"'})

    def _lfs_verify(self, request: web.Request, body: bytes, oid: str) -> web.Response:
        payload = json.loads(body or b"{}")
        stored = self.lfs_objects.get(oid)
        if stored is None or payload.get("size") not in (None, len(stored)):
            raise HubHTTPError(404, f"LFS object {oid} not found")
        return web.json_response({"success": True})

    def _commit(self, request: web.Request, body: bytes, repo_id: str, rev: str) -> web.Response:
        self._require_write(request, repo_id)
        repo = self._get_repo(request, repo_id)
        if self.before_commit is not None:
            hook, self.before_commit = self.before_commit, None  # one shot
            hook(repo_id, rev)
        create_pr = request.query.get("create_pr") in ("1", "true", "True")
        pr_match = re.fullmatch(r"refs/pr/(\d+)", rev)
        if pr_match and int(pr_match.group(1)) in repo.pull_requests:
            head = repo.pull_requests[int(pr_match.group(1))]
        elif rev in repo.branches:
            head = repo.branches[rev]
        else:
            raise HubHTTPError(404, f"Invalid rev id: {rev} (commits go to a branch)", "RevisionNotFound")

        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubHTTPError(400, "the commit payload must start with a header line")
        header = lines[0]["value"]
        parent = header.get("parentCommit")
        if parent is not None and parent != head:
            raise HubHTTPError(
                412, f"A commit has happened since the parent commit {parent}. Please refresh and try again."
            )
        tree = dict(repo.commits[head].files)
        ops: list[CommitOp] = []
        for line in lines[1:]:  # applied to a copy: a bad line leaves the repo untouched
            key, value = line["key"], line["value"]
            path = value["path"].strip("/")
            if key == "file":
                content = (
                    base64.b64decode(value["content"])
                    if value.get("encoding") == "base64"
                    else value["content"].encode()
                )
                tree[path] = Blob(content, lfs=False)
            elif key == "lfsFile":
                stored = self.lfs_objects.get(value["oid"])
                if stored is None:
                    raise HubHTTPError(422, f"LFS object {value['oid']} for {path} was never uploaded")
                tree[path] = Blob(stored, lfs=True)
            elif key == "deletedFile":
                if path not in tree:
                    raise HubHTTPError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                del tree[path]
            elif key == "deletedFolder":
                doomed = [p for p in tree if p.startswith(path + "/")]
                if not doomed:
                    raise HubHTTPError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                for p in doomed:
                    del tree[p]
            else:
                raise HubHTTPError(400, f"unknown commit operation {key!r}")
            ops.append(CommitOp(key, path))

        base = self._base(request)
        if create_pr:
            number = max([*repo.pull_requests, 0]) + 1
            commit = self._new_commit(
                repo, (head,), header.get("summary", ""), header.get("description", ""), tree, ops, number
            )
            repo.pull_requests[number] = commit.oid
            pr_url = f"{base}/datasets/{repo_id}/discussions/{number}"
        else:
            commit = self._new_commit(
                repo, (head,), header.get("summary", ""), header.get("description", ""), tree, ops
            )
            if pr_match:
                repo.pull_requests[int(pr_match.group(1))] = commit.oid
            else:
                repo.branches[rev] = commit.oid
            pr_url = None
        return web.json_response(
            {
                "success": True,
                "commitOid": commit.oid,
                "commitUrl": f"{base}/datasets/{repo_id}/commit/{commit.oid}",
                "pullRequestUrl": pr_url,
                "hookOutput": "",
            }
        )

    # -- download ---------------------------------------------------------------------------

    def _resolve_file(self, request: web.Request, body: bytes, repo_id: str, rev: str, path: str) -> web.Response:
        repo = self._get_repo(request, repo_id)
        oid = self._resolve(repo, rev)
        blob = repo.commits[oid].files.get(path)
        if blob is None:
            raise HubHTTPError(404, f"Entry not found: {path}", "EntryNotFound")
        headers = {
            "ETag": f'"{blob.etag}"',
            "X-Repo-Commit": oid,
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if blob.lfs:
            headers["X-Linked-Etag"] = f'"{blob.sha256}"'
            headers["X-Linked-Size"] = str(blob.size)
        content = blob.content
        status = 200
        range_header = request.headers.get("Range")
        if range_header:
            start, end = _parse_range(range_header, blob.size)
            if start >= blob.size and blob.size > 0:
                raise HubHTTPError(416, "Requested range not satisfiable")
            content = content[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
            status = 206
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(content))
            return web.Response(status=status, headers=headers)
        return web.Response(status=status, body=content, headers=headers)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _is_lfs(path: str, sample: bytes, patterns: list[str]) -> bool:
    """The Hub's rule: a ``.gitattributes`` LFS pattern matches, or the content looks binary."""
    name = path.rsplit("/", 1)[-1]
    if any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(path, p) for p in patterns):
        return True
    return b"\x00" in sample


def _file_entry(path: str, blob: Blob) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": "file", "oid": blob.git_oid, "size": blob.size, "path": path}
    if blob.lfs:
        entry["lfs"] = {"oid": blob.sha256, "size": blob.size, "pointerSize": len(blob.pointer)}
    return entry


def _front_matter(readme: bytes) -> dict[str, Any] | None:
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", readme.decode("utf-8", "replace"), re.S)
    if not match:
        return None
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def _parse_range(header: str, size: int) -> tuple[int, int]:
    """First range of a ``Range: bytes=...`` header as inclusive (start, end)."""
    spec = header.split("=", 1)[1].split(",")[0].strip()
    first, _, last = spec.partition("-")
    if not first:  # suffix range: the last N bytes
        n = int(last)
        return max(size - n, 0), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    return start, min(end, size - 1)


__all__ = ["DEFAULT_TOKEN", "Blob", "Commit", "CommitOp", "FakeHub", "RecordedRequest", "Repo"]
