"""Defaults and choice types that the ``glan`` options declare, each defined once.

Standard library only: typer reads these when it registers the commands, so ``glan --help`` would
otherwise import polars, pydantic or aiohttp just to print a default. The modules that use them
(settings, publishing, taxonomy review) import them from here.
"""

from __future__ import annotations

from typing import Literal

DEFAULT_MODEL = "gpt-4.1"
"""Model for subjects, syllabi and questions."""
DEFAULT_ANSWER_MODEL = "gpt-4.1-mini"
"""Model for answers."""

DEFAULT_LICENSE = "apache-2.0"
"""The maintainer chooses (``--license``). Apache-2.0 matches the project and is what most synthetic
instruction sets use; the card always adds that the generating models' terms may restrict use."""
DEFAULT_MAX_SHARD_SIZE = "500MB"
"""Uncompressed size per published parquet shard."""
DEFAULT_TEST_PER_DISCIPLINE = 50
"""Held-out GLAN-Test records per discipline."""

TieRule = Literal["remove", "keep"]
"""What a tie (or no votes at all) does to a taxonomy node under review."""
