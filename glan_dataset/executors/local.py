"""Today's behaviour: the whole config in this process, on this machine's run directory."""

from __future__ import annotations

from glan_dataset.executors.base import Executor, GenerationJob
from glan_dataset.pipeline import Pipeline
from glan_dataset.servers import served
from glan_dataset.settings import RunManifest


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, shard: tuple[int, int] | None = None) -> None:
        self.shard = shard

    def run(self, job: GenerationJob) -> RunManifest:
        with served(job.serve, job.settings.model, job.engine_config, job.run_dir) as engine_config:
            pipeline = Pipeline(
                job.run_dir,
                job.settings,
                engine_config,
                taxonomy_path=job.taxonomy_path,
                prompts_dir=job.prompts_dir,
                quiet=job.quiet,
                demo=job.demo,
                shard=self.shard,
                steps=job.steps,
            )
            return pipeline.run_sync()
