"""RuntimeConfig: one documented meaning per field, the command line made from the fields.

- `threads` means the same in every engine: the CPU threads each runs on, 0 = every CPU this
  process may run on (its affinity mask), resolved once as `n_threads`;
- `llara-edge run`'s runtime options are generated from the fields marked for the CLI, with
  the fields' own help, choices and defaults (no hand-copied option list).
"""

from __future__ import annotations

import argparse
import dataclasses
import os

import pytest

from llara_edge.cli.options import add_options, values
from llara_edge.errors import ConfigError
from llara_edge.runtime.config import RuntimeConfig, usable_cpus


def test_zero_threads_means_every_cpu_this_process_may_use():
    assert usable_cpus() == len(os.sched_getaffinity(0))
    assert RuntimeConfig().n_threads == usable_cpus()
    assert RuntimeConfig(threads=3).n_threads == 3
    with pytest.raises(ConfigError, match="threads"):
        RuntimeConfig(threads=-1)


def test_every_cli_field_is_an_option_with_the_fields_help():
    parser = argparse.ArgumentParser()
    add_options(parser, RuntimeConfig)
    cli = [f for f in dataclasses.fields(RuntimeConfig) if f.metadata["cli"]]
    flags = {a.dest: a for a in parser._actions if a.dest != "help"}
    assert set(flags) == {f.name for f in cli}
    for f in cli:
        assert flags[f.name].help.startswith(f.metadata["help"][:40])
        flag = "--" + f.name.replace("_", "-")
        negated = ["--no-" + flag[2:]] if isinstance(f.default, bool) else []  # --x/--no-x
        assert flags[f.name].option_strings == [flag, *negated]
    # every field is documented, CLI or not
    assert all(f.metadata["help"] for f in dataclasses.fields(RuntimeConfig))
    assert "--numbering" in parser.format_help()  # argparse %-expands help: a bare "%" breaks it


def test_options_round_trip_to_the_config():
    parser = argparse.ArgumentParser()
    add_options(parser, RuntimeConfig)
    assert RuntimeConfig(**values(parser.parse_args([]), RuntimeConfig)) == RuntimeConfig()
    args = parser.parse_args(["--providers", "cuda, cpu", "--threads", "2", "--numbering",
                              "either", "--cache-type-k", "q8_0"])
    cfg = RuntimeConfig(**values(args, RuntimeConfig))
    assert (cfg.providers, cfg.threads, cfg.numbering, cfg.cache_type_k) == (
        ("cuda", "cpu"), 2, "either", "q8_0")
    with pytest.raises(SystemExit):  # a choice outside the field's choices
        parser.parse_args(["--numbering", "roman"])
    # numbering and prompt variant default to the artifact's record (None); restricting
    # names to the prompt's mentions is opt-in
    plain = RuntimeConfig(**values(parser.parse_args([]), RuntimeConfig))
    assert (plain.numbering, plain.prompt_variant, plain.names_from_prompt) == (None, None,
                                                                                False)
    args = parser.parse_args(["--names-from-prompt", "--prompt-variant",
                              "scene_no_final_period"])
    cfg = RuntimeConfig(**values(args, RuntimeConfig))
    assert (cfg.names_from_prompt, cfg.prompt_variant) == (True, "scene_no_final_period")
    with pytest.raises(ConfigError, match="give one"):
        RuntimeConfig(names_from_prompt=True, object_names=("red block",))
    with pytest.raises(ConfigError, match="providers"):
        RuntimeConfig(**values(parser.parse_args(["--providers", "rocm"]), RuntimeConfig))
