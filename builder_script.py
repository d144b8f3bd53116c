"""``GlanDataset``: the maintainers' ``datasets`` builder for GLAN instruction data.

``datasets`` >= 4 refuses loading scripts (``load_dataset("builder_script.py")`` raises), so this is
not what consumers use: they read the published parquet + YAML repository. It is the Python entry
point for maintainers who want a ``datasets.Dataset`` straight from a run directory::

    import importlib.util, sys
    spec = importlib.util.spec_from_file_location("builder_script", "builder_script.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # datasets re-imports the builder's module by name
    spec.loader.exec_module(module)

    builder = module.GlanDataset(config_name="physics", run_dir="runs/physics", base_url="http://localhost:8000/v1")
    builder.download_and_prepare()
    ds = builder.as_dataset()  # DatasetDict with train and test

Preparing a config runs (or resumes) generation and decontamination for the config's disciplines
in ``run_dir`` and yields the same rows, split the same way, as ``glan publish`` writes. Configs are
``all``, every field, sub-field and discipline of the default taxonomy; for another taxonomy use
``GlanDataset.for_taxonomy(path)``. The prepared Arrow files are cached per (run directory,
settings) under ``RUN/builder-cache``; pass ``download_mode="force_redownload"`` to
``download_and_prepare`` after changing the run by other means.

The file is deliberately not named after the repository (never ``<repo-name>.py`` at a root: the
Hub would take it for a loading script).
"""

# No ``from __future__ import annotations``: a dataclass in a module loaded with importlib (not in
# sys.modules) cannot resolve string annotations.
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from glan_dataset.publishing.split import DEFAULT_TEST_PER_DISCIPLINE, held_out_index, read_clean, split_discipline
from glan_dataset.records import record_features
from glan_dataset.rundir import RunDir
from glan_dataset.taxonomy import ALL_CONFIG, Taxonomy, load_taxonomy

_CITATION = """\
@article{li2024glan,
  title   = {Synthetic Data (Almost) from Scratch: Generalized Instruction Tuning for Language Models},
  author  = {Li, Haoran and Dong, Qingxiu and Tang, Zhengyang and Wang, Chaojun and Zhang, Xingxing and
             Huang, Haoyang and Huang, Shaohan and Huang, Xiaolong and Huang, Zeqiang and Zhang, Dongdong and
             Gu, Yuxian and Cheng, Xin and Wang, Xun and Chen, Si-Qing and Dong, Li and Lu, Wei and
             Sui, Zhifang and Wang, Benyou and Lam, Wai and Wei, Furu},
  journal = {arXiv preprint arXiv:2402.13064},
  year    = {2024}
}
"""
_DESCRIPTION = "GLAN synthetic instruction-tuning data generated from a taxonomy of human knowledge."
BUILDER_CACHE_DIR = "builder-cache"


@dataclass
class GlanConfig(datasets.BuilderConfig):
    """A config: ``all``, a field, a sub-field or a discipline, and the disciplines it covers."""

    kind: str = "all"
    disciplines: tuple[str, ...] = ()


def taxonomy_configs(taxonomy: Taxonomy, version: str = "1.0.0") -> list[GlanConfig]:
    """``all`` first, then every field, sub-field and discipline (slugs are unique across levels)."""
    configs = [
        GlanConfig(
            name=ALL_CONFIG,
            version=datasets.Version(version),
            description="All disciplines",
            kind="all",
            disciplines=tuple(d.slug for d in taxonomy.disciplines()),
        )
    ]
    for field in taxonomy.fields:
        configs.append(
            GlanConfig(
                name=field.slug,
                version=datasets.Version(version),
                description=field.name,
                kind="field",
                disciplines=tuple(d.slug for s in field.subfields for d in s.disciplines),
            )
        )
    for field in taxonomy.fields:
        for sub in field.subfields:
            configs.append(
                GlanConfig(
                    name=sub.slug,
                    version=datasets.Version(version),
                    description=f"{field.name} > {sub.name}",
                    kind="subfield",
                    disciplines=tuple(d.slug for d in sub.disciplines),
                )
            )
    for discipline in taxonomy.disciplines():
        configs.append(
            GlanConfig(
                name=discipline.slug,
                version=datasets.Version(version),
                description=discipline.name,
                kind="discipline",
                disciplines=(discipline.slug,),
            )
        )
    return configs


class GlanDataset(datasets.GeneratorBasedBuilder):
    """Runs or resumes the GLAN pipeline for a config and yields its decontaminated, split records.

    Builder keyword arguments (besides the ``datasets`` ones such as ``config_name``, ``cache_dir``):

    - ``run_dir`` (required): the run directory, created or resumed;
    - ``engine_config`` (``glan_dataset.llm.EngineConfig``) or ``base_url`` / ``api_key``: the
      OpenAI-compatible endpoint (default: ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``);
    - ``generation_settings`` (``GenerationSettings`` or a dict of its fields; its ``config`` is
      replaced by the builder config's name);
    - ``decontamination_settings`` (``DecontaminationSettings`` or a dict);
    - ``taxonomy_path``, ``prompts_dir``, ``test_per_discipline`` (default 50), ``seed``
      (default: the generation seed), ``demo``, ``quiet`` (default True).
    """

    VERSION = datasets.Version("1.0.0")
    BUILDER_CONFIG_CLASS = GlanConfig
    BUILDER_CONFIGS = taxonomy_configs(load_taxonomy(None))
    DEFAULT_CONFIG_NAME = ALL_CONFIG
    TAXONOMY_PATH: str | None = None

    def __init__(
        self,
        *args: Any,
        run_dir: str | Path,
        engine_config: Any = None,
        base_url: str | None = None,
        api_key: str | None = None,
        generation_settings: Any = None,
        decontamination_settings: Any = None,
        taxonomy_path: str | Path | None = None,
        prompts_dir: str | Path | None = None,
        test_per_discipline: int = DEFAULT_TEST_PER_DISCIPLINE,
        seed: int | None = None,
        demo: bool = False,
        quiet: bool = True,
        **kwargs: Any,
    ) -> None:
        from glan_dataset.settings import GenerationSettings

        if type(self).__module__ not in sys.modules:
            raise RuntimeError(
                f"register the module before use: sys.modules[{type(self).__module__!r}] = module "
                "(datasets imports a builder's module by name)"
            )
        self.run = RunDir(Path(run_dir).expanduser().absolute())
        self.engine_config = _engine_config(engine_config, base_url, api_key, quiet)
        if isinstance(generation_settings, GenerationSettings):
            generation_settings = generation_settings.model_dump()
        self.generation_values: dict[str, Any] = dict(generation_settings or {})
        self.decontamination_settings = decontamination_settings
        self.taxonomy_path = taxonomy_path if taxonomy_path is not None else self.TAXONOMY_PATH
        self.prompts_dir = prompts_dir
        self.test_per_discipline = test_per_discipline
        self.demo = demo
        self.quiet = quiet
        name = kwargs.get("config_name") or self.DEFAULT_CONFIG_NAME
        self.seed = seed if seed is not None else int(self.generation_values.get("seed", 0))
        kwargs.setdefault("cache_dir", str(self.run.root / BUILDER_CACHE_DIR))
        kwargs.setdefault("dataset_name", "glan")
        kwargs.setdefault("hash", self._settings_hash(name))
        super().__init__(*args, **kwargs)

    @classmethod
    def for_taxonomy(cls, taxonomy_path: str | Path) -> "type[GlanDataset]":
        """A ``GlanDataset`` whose configs are those of another taxonomy file."""
        taxonomy = load_taxonomy(taxonomy_path)
        attrs = {"BUILDER_CONFIGS": taxonomy_configs(taxonomy), "TAXONOMY_PATH": str(taxonomy_path)}
        return type(cls.__name__, (cls,), attrs)

    def _settings_hash(self, config_name: str) -> str:
        """Cache key of a prepared config: same run directory and settings, same rows."""
        payload = {
            "run": str(self.run.root),
            "config": config_name,
            "generation": self.generation_values,
            "decontamination": _jsonable(self.decontamination_settings),
            "taxonomy": str(self.taxonomy_path),
            "test": self.test_per_discipline,
            "seed": self.seed,
            "demo": self.demo,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]

    # ------------------------------------------------------------------ datasets API
    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description=_DESCRIPTION,
            features=record_features(),
            citation=_CITATION,
            homepage="https://arxiv.org/abs/2402.13064",
        )

    def _split_generators(self, dl_manager: Any) -> list[datasets.SplitGenerator]:
        disciplines = self.prepare_run()
        return [
            datasets.SplitGenerator(
                name=datasets.Split.TRAIN, gen_kwargs={"split": "train", "disciplines": disciplines}
            ),
            datasets.SplitGenerator(name=datasets.Split.TEST, gen_kwargs={"split": "test", "disciplines": disciplines}),
        ]

    def _generate_examples(self, split: str, disciplines: list[str]) -> Any:
        """The split's rows, discipline by discipline, split exactly as ``glan publish`` does."""
        held_out = held_out_index(self.run.clean_dir, test_per_discipline=self.test_per_discipline, seed=self.seed)
        for discipline in sorted(disciplines):
            path = self.run.clean_file(discipline)
            if not path.exists():
                continue
            frame = read_clean(path)
            if not frame.height:
                continue
            parts = split_discipline(
                frame, test_per_discipline=self.test_per_discipline, seed=self.seed, held_out=held_out
            )
            for row in (parts.train if split == "train" else parts.test).iter_rows(named=True):
                yield row["id"], row

    # ------------------------------------------------------------------ pipeline
    def prepare_run(self) -> list[str]:
        """Generate (or resume) and decontaminate the config's disciplines, as ``glan build`` does
        (``glan_dataset.flows.prepare``); return the slugs of those with records."""
        from glan_dataset import flows
        from glan_dataset.settings import GenerationSettings

        settings = GenerationSettings.model_validate({**self.generation_values, "config": self.config.name})
        prepared = flows.prepare(
            self.run.root,
            settings,
            self.engine_config,
            taxonomy_path=self.taxonomy_path,
            prompts_dir=self.prompts_dir,
            decontamination_settings=self.decontamination_settings,
            demo=self.demo,
            quiet=self.quiet,
        )
        return prepared.disciplines


def _engine_config(engine_config: Any, base_url: str | None, api_key: str | None, quiet: bool) -> Any:
    from pydantic import SecretStr

    from glan_dataset.llm import EngineConfig

    if engine_config is not None:
        return engine_config if isinstance(engine_config, EngineConfig) else EngineConfig.model_validate(engine_config)
    import os

    key = api_key or os.environ.get("OPENAI_API_KEY")
    return EngineConfig(
        base_url=base_url or os.environ.get("OPENAI_BASE_URL") or None,
        api_key=SecretStr(key) if key else None,
        quiet=quiet,
    )


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, dict):
        return value
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if dump else repr(value)
