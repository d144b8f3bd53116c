"""``releases.json``: the history of published versions, rendered as the card's changelog.

It lives in the published repository, not in the run directory, because the history belongs to the
target: the same run published to two places has two histories. Each publish reads the target's
current file, appends one entry when the data changed (or a tag was asked for) and writes it back.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from glan_dataset.errors import UsageError

RELEASES_FILE = "releases.json"


class Release(BaseModel):
    """One published version."""

    version: str  # the tag when there is one, else "r<N>"
    tag: str | None = None
    date: str  # YYYY-MM-DD (UTC)
    message: str = ""
    records: int
    train: int
    test: int
    disciplines: int
    disciplines_changed: list[str] = Field(default_factory=list)
    disciplines_removed: list[str] = Field(default_factory=list)
    partial: bool = False
    """Published with ``--allow-partial``: ``missing`` says what the release lacks."""
    missing: dict[str, Any] | None = None


def load_releases(content: bytes | None, *, source: str = RELEASES_FILE) -> list[Release]:
    """The releases recorded in a target's ``releases.json`` (empty if absent).

    A file that is there but cannot be read is refused (one line naming it): replacing it would
    silently erase the dataset's history.
    """
    if content is None:
        return []
    try:
        raw = json.loads(content)
        return [Release.model_validate(item) for item in raw["releases"]]
    except (ValueError, ValidationError, KeyError, TypeError) as error:
        reason = type(error).__name__ if not isinstance(error, KeyError) else "no 'releases' list"
        raise UsageError(
            f"{source} is not a readable release history ({reason}): restore it from a backup or a tag, "
            f"or delete it to start the history again"
        ) from None


def dump_releases(releases: list[Release]) -> bytes:
    return (json.dumps({"releases": [r.model_dump() for r in releases]}, indent=2, ensure_ascii=False) + "\n").encode()


def next_release(
    previous: list[Release],
    *,
    tag: str | None,
    message: str,
    train: int,
    test: int,
    disciplines: int,
    changed: list[str],
    removed: list[str],
    missing: dict[str, Any] | None = None,
    today: str | None = None,
) -> Release:
    """The entry for this publish; its version is the tag, else the next ``r<N>``."""
    return Release(
        version=tag or f"r{len(previous) + 1}",
        tag=tag,
        date=today or datetime.now(UTC).date().isoformat(),
        message=message,
        records=train + test,
        train=train,
        test=test,
        disciplines=disciplines,
        disciplines_changed=sorted(changed),
        disciplines_removed=sorted(removed),
        partial=missing is not None,
        missing=missing,
    )
