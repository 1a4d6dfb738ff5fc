"""The hooks a SLAM plugin implements: one per component kind, and one for ``slam`` subcommands.

A plugin is a module (or object) named by an entry point in the group ``slam.plugins``.
It implements any of the hooks below with :data:`hookimpl`; each component hook returns a list
of :class:`~slam_core.records.ComponentSpec` records, :func:`slam_commands` a list of
:class:`~slam_core.records.CommandSpec` records. Discovery (``slam_core.plugins``)
calls each plugin's hooks separately, so one broken plugin cannot hide the others.

Records are cheap: the config is a pydantic model and the factory a ``"module:attr"``
string, so listing plugins imports no torch. The factory is imported when a pipeline is
built; its call signature is its kind's protocol in :mod:`slam_core.components`
(``EncoderFactory``, ``ProjectorFactory``, ...), and what it returns must be an instance of the
kind's contract class (:func:`slam_core.factories.build_component` checks it).
"""

from __future__ import annotations

import pluggy

from slam_core.records import CommandSpec, ComponentSpec, MetricSpec

PROJECT_NAME = "slam"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)

#: Decorate a plugin's hook functions with this marker.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def slam_encoders() -> list[ComponentSpec]:
    """Declare encoders (audio, video or audio-visual front ends).

    Factory signature: ``factory(config) -> slam_core.components.Encoder``
    (:class:`slam_core.components.EncoderFactory`).

    Example plugin module (registered as ``[project.entry-points."slam.plugins"]
    my-encoder = "my_pkg.plugin"``)::

        from typing import Literal
        from pydantic import BaseModel, ConfigDict
        from slam_core.hookspecs import hookimpl
        from slam_core.records import CommandSpec, ComponentSpec, MetricSpec

        class MyEncoderConfig(BaseModel):
            model_config = ConfigDict(extra="forbid")
            type: Literal["my-encoder"] = "my-encoder"
            dim: int = 256

        @hookimpl
        def slam_encoders():
            return [ComponentSpec(name="my-encoder", config=MyEncoderConfig,
                                  factory="my_pkg.model:MyEncoder", api="1.0")]
    """


@hookspec
def slam_projectors() -> list[ComponentSpec]:
    """Declare projectors that map encoder frames to LLM embeddings.

    Factory signature: ``factory(config, *, input_dim: int, output_dim: int)
    -> slam_core.components.Projector`` (:class:`slam_core.components.ProjectorFactory`);
    ``input_dim`` is the encoder's ``output_dim`` and ``output_dim`` the LLM's ``hidden_size``.

    Example::

        @hookimpl
        def slam_projectors():
            return [ComponentSpec(name="my-projector", config=MyProjectorConfig,
                                  factory="my_pkg.projector:MyProjector", api="1.0")]
    """


@hookspec
def slam_llms() -> list[ComponentSpec]:
    """Declare causal language models.

    Factory signature: ``factory(config) -> slam_core.components.LLM``
    (:class:`slam_core.components.LLMFactory`).

    Example::

        @hookimpl
        def slam_llms():
            return [ComponentSpec(name="my-llm", config=MyLLMConfig, factory="my_pkg.llm:MyLLM", api="1.0")]
    """


@hookspec
def slam_peft_methods() -> list[ComponentSpec]:
    """Declare parameter-efficient fine-tuning methods (LoRA, adapters, ...).

    Factory signature: ``factory(config) -> slam_core.components.PEFTMethod``
    (:class:`slam_core.components.PEFTFactory`).

    Example::

        @hookimpl
        def slam_peft_methods():
            return [ComponentSpec(name="my-peft", config=MyPeftConfig, factory="my_pkg.peft:MyPeft", api="1.0")]
    """


@hookspec
def slam_task_heads() -> list[ComponentSpec]:
    """Declare task heads (prompt and target construction, post-processing, metrics).

    Factory signature: ``factory(config) -> slam_core.components.TaskHead``
    (:class:`slam_core.components.TaskHeadFactory`).

    Example::

        @hookimpl
        def slam_task_heads():
            return [ComponentSpec(name="my-task", config=MyTaskConfig, factory="my_pkg.task:MyTask", api="1.0")]
    """


@hookspec
def slam_commands() -> list[CommandSpec]:
    """Declare subcommands of the ``slam`` command (``slam <name> ...``), e.g. a demo or a data tool.

    Factory signature: ``factory(parser: argparse.ArgumentParser) -> run``, where ``run(args:
    argparse.Namespace) -> int`` is the exit status. The factory adds the subcommand's arguments
    to ``parser`` (already named and described from the record) and returns ``run``. The ``slam``
    command imports it only when that subcommand is chosen; ``slam --help`` and ``slam plugins``
    show the record alone. ``run`` raises :class:`~slam_core.errors.SlamError` (or a subclass) for
    a user error, which ``slam`` prints as one ``slam: error: ...`` line with exit status 2.

    A name that another plugin already declares is a conflict (the later plugin is skipped, as
    for components); a name the ``slam`` command has itself (``plugins``, ``spec``, ``inspect``,
    ``train``, ``infer``, ``eval``) is reported by ``slam plugins`` and never shadows it.

    Example::

        # my_pkg/plugin.py (the entry point's module: imports no torch)
        @hookimpl
        def slam_commands():
            return [CommandSpec(name="hello", help="print a greeting",
                                factory="my_pkg.cli:hello_command", api="1.0")]

        # my_pkg/cli.py
        def hello_command(parser):
            parser.add_argument("--name", default="world")

            def run(args):
                print(f"hello, {args.name}")
                return 0

            return run
    """


@hookspec
def slam_metrics() -> list[MetricSpec]:
    """Declare metrics by name, so that a task head's ``metrics`` can be checked without scoring.

    slam-core declares its scorers (``wer``, ``bleu``, ``cider_d``, ...) this way. Each record's
    ``implementation`` is imported only when a score is computed (see
    :class:`~slam_core.records.MetricSpec`).

    Example::

        @hookimpl
        def slam_metrics():
            return [MetricSpec(name="my_metric", implementation="my_pkg.metric:MY_METRIC", api="1.0")]
    """


#: The hook that declares metrics (not a component kind: metrics are not built from a spec section).
METRIC_HOOK = "slam_metrics"

#: Which hook declares which kind of component.
HOOK_FOR_KIND = {
    "encoder": "slam_encoders",
    "projector": "slam_projectors",
    "llm": "slam_llms",
    "peft": "slam_peft_methods",
    "task": "slam_task_heads",
}

#: The hook that declares ``slam`` subcommands (not a component kind).
COMMANDS_HOOK = "slam_commands"
