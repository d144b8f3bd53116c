"""The Hugging Face Hub as a publish target: one atomic, optimistically locked commit per release.

Why it is shaped like this:

- **One commit per release.** Every added, updated and deleted file goes into a single
  ``create_commit``: readers of the repo never see a card that describes shards that are not there
  yet, and a failure leaves the repo exactly as it was (LFS objects uploaded before a refused
  commit are unreferenced, not published).
- **Optimistic locking.** :meth:`HubTarget.existing_files` remembers the head commit it listed; the
  plan was computed against that state, so :meth:`HubTarget.publish` commits with
  ``parent_commit=<that head>``. If anyone pushed in between, the Hub answers 412 and we stop with a
  one-line "run publish again" instead of overwriting their work with a plan made for an older repo.
- **Tags are checked before anything is written**, so ``--tag v1.0`` twice cannot leave an untagged
  release commit behind.
- **Errors are one line** (:class:`HubError`): the HTTP status and what to do. huggingface_hub's own
  messages are multi-line and carry URLs and request ids; they never carry the token, and neither
  do ours (the token is only ever handed to ``HfApi``).

huggingface_hub 2.x reads ``HF_ENDPOINT`` at import time; ``endpoint=`` here overrides it per target.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glan_dataset.errors import GlanError, UsageError
from glan_dataset.publishing.targets import PublishPlan, PublishResult, RemoteFile

if TYPE_CHECKING:  # huggingface_hub is imported lazily: `glan publish ./folder` never needs it
    from huggingface_hub import HfApi

DEFAULT_BRANCH = "main"
REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
LOGIN_HINT = "set HF_TOKEN or run `hf auth login`"
MAX_INLINE_READ = 10 * 1024 * 1024
"""Non-LFS files up to this size are read to learn their sha256 (the Hub's regular-file limit)."""


class HubError(GlanError):
    """A Hub operation failed; the message (one line) gives the status and what to do."""


class HubAuthError(HubError):
    """No token, or the Hub refused it (401/403)."""


class HubConflictError(HubError):
    """The revision moved since it was read (a concurrent push): nothing was written."""


class HubTarget:
    """A dataset repository on the Hub (``hf://ORG/NAME[@revision]``).

    ``revision`` is the branch to publish to (created from ``main`` when missing); ``create_pr``
    opens a pull request against it instead of committing to it. ``token`` defaults to ``HF_TOKEN``
    and then to the ``hf auth login`` token; ``endpoint`` defaults to ``HF_ENDPOINT`` / huggingface.co.
    """

    def __init__(
        self,
        repo_id: str,
        *,
        private: bool = False,
        revision: str | None = None,
        create_pr: bool = False,
        token: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        repo_id = repo_id.strip().strip("/")
        if not REPO_ID_RE.match(repo_id) or ".." in repo_id or "--" in repo_id:
            raise UsageError(f"bad Hub repo {repo_id!r}: use hf://ORG/NAME (letters, digits, '.', '_', '-')")
        if revision is not None:
            _check_ref_name(revision, "--revision")
            if revision.startswith("refs/") or re.fullmatch(r"[0-9a-f]{40}", revision):
                raise UsageError(f"--revision {revision!r} must be a branch name (a commit or ref cannot be pushed to)")
        self.repo_id = repo_id
        self.private = private
        self.revision = revision
        self.create_pr = create_pr
        self.description = f"hf://{repo_id}" + (f"@{revision}" if revision else "")
        self._token_arg = token
        self._endpoint = endpoint.rstrip("/") if endpoint else None
        self._api: HfApi | None = None
        self._listed_head: str | None = None
        """Head commit of the branch (or of main, for a branch still to create) when last listed."""
        self._listed = False
        self._content: dict[str, bytes] = {}
        """Non-LFS file contents read while listing (README.md, releases.json, ...), by path."""

    def __repr__(self) -> str:  # never the token
        return f"HubTarget({self.description!r}, private={self.private}, create_pr={self.create_pr})"

    # -- properties -------------------------------------------------------------------------

    @property
    def branch(self) -> str:
        return self.revision or DEFAULT_BRANCH

    @property
    def endpoint(self) -> str:
        from huggingface_hub import constants

        return self._endpoint or constants.ENDPOINT

    @property
    def url(self) -> str:
        base = f"{self.endpoint}/datasets/{self.repo_id}"
        return base if self.revision is None else f"{base}/tree/{self.revision}"

    # -- token and client -------------------------------------------------------------------

    def _token(self, required: bool) -> str | None:
        from huggingface_hub import get_token

        token = self._token_arg or get_token()
        if token is None and required:
            raise HubAuthError(f"no Hugging Face token to publish to {self.description}: {LOGIN_HINT}")
        return token

    def _client(self, *, write: bool) -> HfApi:
        """The HfApi for this target. Reads work anonymously (public repos); writes need a token."""
        if write:
            self._token(required=True)
        if self._api is None:
            from huggingface_hub import HfApi

            from glan_dataset import __version__

            # token=False means anonymous: otherwise HfApi would look the token up again itself.
            self._api = HfApi(
                endpoint=self._endpoint,
                token=self._token(required=False) or False,
                library_name="glan-dataset",
                library_version=__version__,
            )
        return self._api

    # -- reading ----------------------------------------------------------------------------

    def existing_files(self) -> dict[str, RemoteFile]:
        """Files of the branch with sha256 (LFS oid, or the sha256 of the small non-LFS files' content).

        Empty when the repo does not exist. For a branch that does not exist yet, main's files: that
        is what the branch will hold when :meth:`publish` creates it, so stale shards are still
        deleted. The head commit listed here is the ``parent_commit`` of the next publish.
        """
        from huggingface_hub import RepoFile

        api = self._client(write=False)
        self._content = {}
        with _hub_errors(self, "listing"):
            head = self._head(api, self.branch)
            if head is None and self.revision is not None:
                head = self._head(api, DEFAULT_BRANCH)
            self._listed, self._listed_head = True, head
            if head is None:
                return {}
            found: dict[str, RemoteFile] = {}
            for entry in api.list_repo_tree(self.repo_id, recursive=True, revision=head, repo_type="dataset"):
                if not isinstance(entry, RepoFile):
                    continue
                if entry.lfs is not None:
                    found[entry.path] = RemoteFile(path=entry.path, sha256=entry.lfs.sha256, size=entry.lfs.size)
                    continue
                if entry.size > MAX_INLINE_READ:
                    # Not expected (the Hub keeps big files in LFS/Xet): leave the comparison to the plan.
                    found[entry.path] = RemoteFile(path=entry.path, sha256=None, size=entry.size)
                    continue
                content = self._download(entry.path, head)
                if content is None:  # listed but gone: treat as absent rather than guess
                    continue
                self._content[entry.path] = content
                found[entry.path] = RemoteFile(
                    path=entry.path, sha256=hashlib.sha256(content).hexdigest(), size=len(content)
                )
            return found

    def read_file(self, path: str) -> bytes | None:
        """A file as of the listed head (or the branch now), ``None`` if the repo, branch or file is missing."""
        if path in self._content:
            return self._content[path]
        api = self._client(write=False)
        with _hub_errors(self, f"reading {path} from"):
            revision = self._listed_head if self._listed else self._head(api, self.branch)
            if revision is None:
                return None
            return self._download(path, revision)

    def _head(self, api: HfApi, revision: str) -> str | None:
        """Commit a revision points to now; ``None`` if the repo or the revision does not exist."""
        from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

        try:
            return api.dataset_info(self.repo_id, revision=revision).sha
        except (RepositoryNotFoundError, RevisionNotFoundError):
            return None

    def _download(self, path: str, revision: str) -> bytes | None:
        """One file's bytes, straight into memory (not the HF cache: this is the maintainer's machine)."""
        from huggingface_hub import hf_hub_url
        from huggingface_hub.errors import EntryNotFoundError
        from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

        url = hf_hub_url(self.repo_id, path, repo_type="dataset", revision=revision, endpoint=self.endpoint)
        headers = build_hf_headers(token=self._token(required=False) or False, library_name="glan-dataset")
        response = get_session().get(url, headers=headers, follow_redirects=True)
        try:
            hf_raise_for_status(response)
        except EntryNotFoundError:
            return None
        return response.content

    # -- checking before any work -------------------------------------------------------------

    def preflight(self, tag: str | None = None) -> None:
        """Check, before anything is generated or uploaded, that this publish can succeed.

        The token is there and accepted, it may write to the repo (or create it in its namespace),
        the branch is not a tag, and ``tag`` is free (or already names the branch head: a rerun of
        a release that landed). Raises one-line errors; writes nothing.
        """
        if tag is not None:
            _check_ref_name(tag, "--tag")
            if self.create_pr:
                raise UsageError(
                    "--tag cannot be used with --create-pr: merge the pull request, then tag the merged commit"
                )
        api = self._client(write=True)
        with _hub_errors(self, "checking"):
            self._check_write_access(api.whoami())
            refs = self._refs(api, with_tag_targets=True)
        if refs is None:
            return  # created by the publish, in a namespace the token may write to
        branches, tags = refs
        if self.branch in tags and self.branch not in branches:
            raise UsageError(f"--revision {self.branch!r} is a tag on {self.description}, not a branch")
        head = branches.get(self.branch) or branches.get(DEFAULT_BRANCH)
        if tag is not None and tag in tags and tags[tag] != head:
            raise UsageError(f"tag {tag!r} already exists on {self.description}; choose a new --tag")

    def _check_write_access(self, me: dict[str, Any]) -> None:
        """What whoami says about the token: refuse a read-only token or a namespace it cannot write to."""
        namespace = self.repo_id.split("/", 1)[0]
        token = (me.get("auth") or {}).get("accessToken") or {}
        if token.get("role") == "read":
            raise HubAuthError(
                f"the Hugging Face token is read-only: it cannot publish to {self.description}; "
                f"{LOGIN_HINT} with a write token"
            )
        if namespace == me.get("name"):
            return
        orgs = {org.get("name"): org for org in me.get("orgs") or [] if isinstance(org, dict)}
        org = orgs.get(namespace)
        if org is None or org.get("roleInOrg") == "read":
            why = "is not a member of" if org is None else "has read-only access to"
            raise HubAuthError(
                f"the Hugging Face account {me.get('name', '?')!r} {why} {namespace!r}: it cannot publish to "
                f"{self.description}; use a token with write access to {namespace}"
            )

    # -- writing ----------------------------------------------------------------------------

    def publish(
        self, staging: Path, plan: PublishPlan, *, message: str, tag: str | None, dry_run: bool
    ) -> PublishResult:
        """Apply ``plan`` as one commit on the branch (or one pull request), then tag it.

        Refuses, before writing anything: a missing token, an existing ``tag``, ``tag`` with
        ``create_pr`` (tag the merged commit instead), and a branch that moved since
        :meth:`existing_files` listed it. ``dry_run`` only reads.
        """
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        if tag is not None:
            _check_ref_name(tag, "--tag")
            if self.create_pr:
                raise UsageError(
                    "--tag cannot be used with --create-pr: merge the pull request, then tag the merged commit"
                )
        staging = Path(staging)
        missing = [rel for rel in [*plan.add, *plan.update] if not (staging / rel).is_file()]
        if missing:
            raise UsageError(
                f"the staging folder {staging} lacks {missing[0]} (and {len(missing) - 1} more): rebuild it"
            )
        result = PublishResult(target=self.description, plan=plan, tag=tag, url=self.url, dry_run=dry_run)

        if dry_run:
            api = self._client(write=False)
            with _hub_errors(self, "checking"):
                refs = self._refs(api)
                if tag is not None and refs is not None and tag in refs[1]:
                    raise UsageError(f"tag {tag!r} already exists on {self.description}; choose a new --tag")
            return result

        api = self._client(write=True)
        with _hub_errors(self, "publishing to"):
            refs = self._refs(api, with_tag_targets=True)
            if refs is None:  # a new repo: nothing to check, create it (with its initial commit)
                api.create_repo(self.repo_id, repo_type="dataset", private=self.private, exist_ok=True)
                refs = self._refs(api, with_tag_targets=True) or ({}, {})
            branches, tags = refs
            if tag is not None and tag in tags:
                if plan.is_empty and tags[tag] == branches.get(self.branch):
                    result.commit = tags[tag]  # this release landed and was tagged already (a rerun)
                    return result
                raise UsageError(f"tag {tag!r} already exists on {self.description}; choose a new --tag")
            if self.branch in tags and self.branch not in branches:
                raise UsageError(f"--revision {self.branch!r} is a tag on {self.description}, not a branch")

            # A missing branch starts where existing_files() saw main: that is what the plan assumed.
            head = branches.get(self.branch) or branches.get(DEFAULT_BRANCH)
            if self._listed and self._listed_head is not None and head != self._listed_head:
                raise self._stale(head)
            if head is None:
                raise HubError(
                    f"{self.description} has no {DEFAULT_BRANCH} branch to start from; create it on the Hub first"
                )
            if self.branch not in branches:
                api.create_branch(self.repo_id, branch=self.branch, revision=head, repo_type="dataset", exist_ok=True)

            commit: str | None = head
            if not plan.is_empty:
                operations = [
                    *(
                        CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(staging / rel))
                        for rel in [*plan.add, *plan.update]
                    ),
                    *(CommitOperationDelete(path_in_repo=rel) for rel in plan.delete),
                ]
                info = api.create_commit(
                    self.repo_id,
                    operations,
                    commit_message=message,
                    repo_type="dataset",
                    revision=self.branch,
                    parent_commit=head,
                    create_pr=self.create_pr,
                )
                commit = info.oid
                result.url = info.pr_url or info.commit_url
            elif self.create_pr:
                commit = None  # nothing to propose: no pull request is opened
            result.commit = commit

        if tag is not None and commit is not None:
            with _hub_errors(self, f"tagging {commit[:8]} as {tag} on", committed=commit):
                api.create_tag(self.repo_id, tag=tag, tag_message=message, revision=commit, repo_type="dataset")
        # What we just wrote is the new known state: a second publish from this object needs no re-list.
        if not self.create_pr and commit is not None:
            self._listed, self._listed_head, self._content = True, commit, {}
        return result

    def _refs(self, api: HfApi, *, with_tag_targets: bool = False) -> tuple[dict[str, str], Any] | None:
        """(branch -> head commit, tag names; or tag -> commit) of the repo, or ``None`` if it does not exist."""
        from huggingface_hub.errors import RepositoryNotFoundError

        try:
            refs = api.list_repo_refs(self.repo_id, repo_type="dataset")
        except RepositoryNotFoundError:
            return None
        branches = {ref.name: ref.target_commit for ref in refs.branches}
        if with_tag_targets:
            return branches, {ref.name: ref.target_commit for ref in refs.tags}
        return branches, {ref.name for ref in refs.tags}

    def _stale(self, head: str | None = None) -> HubConflictError:
        seen = (self._listed_head or "?")[:8]
        now = f" (now {head[:8]})" if head else ""
        return HubConflictError(
            f"{self.description} changed since it was read at {seen}{now}: someone else pushed; "
            "nothing was written, run publish again"
        )


# ---------------------------------------------------------------------------------------------
# Error translation
# ---------------------------------------------------------------------------------------------


class _hub_errors:
    """Turn huggingface_hub / transport errors into one-line :class:`HubError`s (never the token).

    A context manager rather than a decorator so each step names what it was doing.
    """

    def __init__(self, target: HubTarget, action: str, committed: str | None = None) -> None:
        self.target = target
        self.action = action
        self.committed = committed

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if exc is None or isinstance(exc, GlanError):
            return False
        error = _translate(self.target, self.action, exc)
        if error is None:
            return False  # a bug, not an environment problem: let the traceback show
        if self.committed is not None:
            error = type(error)(f"committed {self.committed[:8]} to {self.target.description}, but {error}")
        raise error from None


def _translate(target: HubTarget, action: str, exc: BaseException) -> HubError | None:
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled, RepositoryNotFoundError
    from huggingface_hub.utils import httpx

    where = f"{action} {target.description}"
    namespace = target.repo_id.split("/")[0]
    if isinstance(exc, RuntimeError) and isinstance(exc.__cause__, (HfHubHTTPError, httpx.HTTPError, OSError)):
        exc = exc.__cause__  # LFS uploads wrap the HTTP error in "Error while uploading 'x' to the Hub."
    if isinstance(exc, OfflineModeIsEnabled):
        return HubError(f"cannot publish to {target.description}: HF_HUB_OFFLINE is set; unset it to reach the Hub")
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else 0
        detail = _one_line(exc.server_message or "", target)
        suffix = f" ({detail})" if detail else ""
        if status == 401:
            return HubAuthError(
                f"the Hub refused the token while {where} (401){suffix}: {LOGIN_HINT} with a valid write token"
            )
        if status == 403:
            return HubAuthError(
                f"no permission for {where} (403){suffix}: use a token with write access to {namespace}"
            )
        if status == 412:
            return target._stale()
        if isinstance(exc, RepositoryNotFoundError) or status == 404:
            return HubError(
                f"not found while {where} (404){suffix}: check the repo name and that your token can see it"
            )
        if status == 409:
            return HubError(f"conflict while {where} (409){suffix}: run publish again")
        if status == 429:
            return HubError(f"rate-limited by the Hub while {where} (429): wait a few minutes and try again")
        if status >= 500:
            return HubError(f"the Hub failed while {where} ({status}){suffix}: try again later")
        return HubError(f"the Hub refused {where} ({status}){suffix}")
    if isinstance(exc, ValueError) and "Invalid metadata in README.md" in str(exc):
        return HubError(f"the Hub rejected the README.md metadata while {where}: {_one_line(str(exc), target)}")
    if isinstance(exc, (httpx.HTTPError, OSError)):
        reason = _one_line(str(exc), target) or type(exc).__name__
        return HubError(f"cannot reach the Hub at {target.endpoint} while {where}: {reason}")
    return None


def _one_line(text: str, target: HubTarget) -> str:
    """Server text squeezed to one short line, with the token scrubbed just in case an echo ever carries it."""
    line = " ".join(text.split())
    token = target._token_arg
    try:
        token = token or target._token(required=False)
    except GlanError:  # pragma: no cover - _token(required=False) never raises
        token = None
    if token:
        line = line.replace(token, "***")
    return line[:200] + ("…" if len(line) > 200 else "")


def _check_ref_name(name: str, flag: str) -> None:
    """The git ref rules that matter here (git check-ref-format, abridged)."""
    bad = (
        not name
        or name.startswith(("-", ".", "/"))
        or name.endswith((".", "/", ".lock"))
        or ".." in name
        or "//" in name
        or "@{" in name
        or any(c in name for c in " ~^:?*[\\\t\n")
    )
    if bad:
        raise UsageError(f"bad {flag} {name!r}: use something like v1.0 or release-2 (no spaces, '..', ':' or '~')")
