"""The LLM engine: async chat completions against any OpenAI-compatible endpoint, with adaptive
limits, retries, structured output, a crash-safe SQLite cache, the Batch API, cost and progress.

    async with LLMEngine(EngineConfig(...), run_dir) as engine:
        async for outcome in engine.stream(requests, stage="questions", total=n):
            ...  # ChatResult or ChatFailure
"""

from glan_dataset.llm.cost import PriceTable, UsageLedger
from glan_dataset.llm.engine import LLMEngine
from glan_dataset.llm.types import (
    ChatFailure,
    ChatRequest,
    ChatResult,
    EndpointUnreachableError,
    EngineConfig,
    public_url,
)

__all__ = [
    "ChatFailure",
    "ChatRequest",
    "ChatResult",
    "EndpointUnreachableError",
    "EngineConfig",
    "LLMEngine",
    "PriceTable",
    "UsageLedger",
    "public_url",
]
