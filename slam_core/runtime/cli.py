"""The ``slam`` command: its own subcommands, and those plugins declare through the ``slam_commands`` hook.

``slam plugins`` and ``slam spec ...`` import no torch; ``slam inspect`` imports it to
build the model on the meta device (no weights are allocated or loaded). A plugin's command
is imported only when it is the one that runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Collection, Sequence

from slam_core import plugins
from slam_core.errors import PluginError, SlamError


def _table(rows: list[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)


PLUGIN_COLUMNS = ("name", "kind", "distribution", "version", "status")


def cmd_plugins(args: argparse.Namespace) -> int:
    registry = plugins.registry()
    entries = [
        _plugin_row(name, kind, entry.plugin, entry.plugin.status.value)
        for kind, components in registry.components.items()
        for name, entry in sorted(components.items())
    ]
    shadowed = [name for name in sorted(registry.commands) if name in BUILTIN_COMMANDS]
    entries += [
        _plugin_row(name, "command", entry.plugin, "conflict" if name in shadowed else entry.plugin.status.value)
        for name, entry in sorted(registry.commands.items())
    ]
    skipped = [
        {**_plugin_row(report.entry_point, "-", report, report.status.value), "message": report.message}
        for report in registry.reports
        if report.status is not plugins.PluginStatus.OK
    ]
    if args.json:
        print(json.dumps(entries + skipped, indent=2))
        return 0
    rows = [[entry[column] for column in PLUGIN_COLUMNS] for entry in entries + skipped]
    print(_table(rows, [column.upper() for column in PLUGIN_COLUMNS]))
    for report in registry.problems():
        print(f"\n{report.label}: {report.status.value}: {report.message}", file=sys.stderr)
    for name in shadowed:
        print(f"\n{_shadowed_message(registry.commands[name])}", file=sys.stderr)
    return 0


def _plugin_row(name: str, kind: str, report: plugins.PluginReport, status: str) -> dict[str, str]:
    return {
        "name": name,
        "kind": kind,
        "distribution": report.distribution,
        "version": report.version,
        "status": status,
    }


def _shadowed_message(command: plugins.RegisteredCommand) -> str:
    return (
        f"{command.plugin.label}: conflict: command {command.name!r} is a command of slam itself; "
        f"the plugin's is not used (rename it)"
    )


def cmd_spec_validate(args: argparse.Namespace) -> int:
    from slam_core.spec import COMPONENT_SECTIONS, load_spec
    from slam_core.spec_paths import check_input_paths

    spec = load_spec(args.file)
    if args.check_paths:
        check_input_paths(spec, source=args.file)
    if args.deep:
        _build_on_meta(spec, args.file)
    chosen = ", ".join(
        f"{section}={getattr(spec, section).type}"
        for section in COMPONENT_SECTIONS
        if getattr(spec, section) is not None
    )
    built = "; the model builds (meta device)" if args.deep else ""
    print(f"{args.file}: valid ({chosen}){built}")
    return 0


def _build_on_meta(spec, source: str) -> None:
    """``slam spec validate --deep``: build the model on the meta device; a spec problem names the file."""
    from slam_core.errors import SpecError
    from slam_core.runtime.inspect import build_on_meta

    try:
        build_on_meta(spec)
    except SpecError as exc:
        raise SpecError(exc.problems, exc.source or source) from None


def cmd_spec_schema(args: argparse.Namespace) -> int:
    from slam_core.spec import spec_model

    print(json.dumps(spec_model().model_json_schema(), indent=2))
    return 0


def _load(args: argparse.Namespace, check_paths: bool = False, unread: Collection[str] = ()):
    """The spec of ``args.spec`` with ``--set`` overrides applied, validated, its input paths absolute.

    With ``check_paths`` every input path but the dotted fields in ``unread`` must exist.
    """
    from slam_core.spec import load_spec
    from slam_core.spec_paths import check_input_paths

    spec = load_spec(args.spec, overrides=args.set)
    if check_paths:
        check_input_paths(spec, source=args.spec, skip=unread)
    return spec


def cmd_train(args: argparse.Namespace) -> int:
    from slam_core.runtime.train import train

    spec = _load(args, check_paths=True, unread=["data.test_manifest"])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    resume = args.resume if args.resume is not None else not args.fresh
    result = train(spec, run_dir=args.run_dir, resume=resume, score=args.score)
    if int(os.environ.get("RANK", "0")) == 0:
        print(
            f"training stopped at step {result.step}; last checkpoint {result.last_checkpoint}, "
            f"best {result.best_checkpoint}"
        )
    return 0


def cmd_infer(args: argparse.Namespace) -> int:
    from slam_core.runtime.export.folder import is_export
    from slam_core.runtime.infer.decode import decode

    if is_export(args.spec):
        return _infer_export(args)
    unread = ["data.train_manifest", "data.valid_manifest"] + (["data.test_manifest"] if args.manifest else [])
    spec = _load(args, check_paths=True, unread=unread)
    output = decode(spec, args.output, checkpoint=args.checkpoint, manifest=args.manifest)
    print(f"slam infer: hypotheses written to {output}")
    return 0


def _infer_export(args: argparse.Namespace) -> int:
    """``slam infer EXPORT --manifest M --output F``: the export's own spec and weights."""
    from slam_core.errors import SpecError
    from slam_core.runtime.export.folder import load_export_spec
    from slam_core.runtime.infer.decode import decode

    if args.checkpoint:
        raise SpecError([f"--checkpoint: {args.spec} is an export, which holds its own weights; drop --checkpoint"])
    if not args.manifest:
        raise SpecError([f"{args.spec} is an export, which names no data: give the manifest to decode (--manifest)"])
    spec = load_export_spec(args.spec, args.set)
    output = decode(spec, args.output, checkpoint=args.spec, manifest=args.manifest)
    print(f"slam infer: hypotheses written to {output}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from slam_core.runtime.export.writer import export_run

    options = {} if args.audio_token_id is None else {"audio_token_id": args.audio_token_id}
    out = export_run(args.source, args.out, format=args.format, keep_adapter=args.keep_adapter, **options)
    print(f"slam export: {args.source} written to {out} ({args.format} format)")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from slam_core.runtime.infer.evaluate import evaluate, parse_scoring_options

    if args.metrics:
        metrics = [name.strip() for name in args.metrics.split(",") if name.strip()]
    else:
        from slam_core.model import build_component

        metrics = list(build_component("task", _load(args).task).metrics)
    report = evaluate(args.hypotheses, metrics, args.output, **parse_scoring_options(args.option))
    for name, value in report["metrics"].items():
        print(f"{name}: {value:.4f}")
    if report["skipped"]:
        print(f"skipped: {report['skipped']}")  # bad samples slam infer could not decode: not scored
    return 0


def cmd_convert_slam_llm(args: argparse.Namespace) -> int:
    from pathlib import Path

    from slam_core.runtime.checkpoints.slam_llm import convert
    from slam_core.runtime.inspect import build_on_meta

    spec = _load(args, check_paths=True, unread=["data.train_manifest", "data.valid_manifest", "data.test_manifest"])
    model = build_on_meta(spec)  # names and shapes only: no weight is read
    trainable = {name: tuple(p.shape) for name, p in model.named_parameters() if p.requires_grad}
    output = convert(Path(args.checkpoint), trainable, Path(args.output))
    print(
        f"slam convert: {len(trainable)} tensors written to {output}; decode with: slam infer {args.spec} "
        f"--checkpoint {output} --output hyp.jsonl"
    )
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from slam_core.runtime.inspect import estimate_step, inspect_spec, render_report, render_step
    from slam_core.spec import load_spec

    shape = _step_shape(args)
    spec = load_spec(args.file)
    print(render_report(inspect_spec(spec, dtype=args.dtype)))
    if shape is not None:
        print(render_step(estimate_step(spec, *shape)))
    return 0


#: ``slam inspect``'s flags of one training step's shape, and their attributes.
STEP_FLAGS = {"--batch": "batch", "--seconds": "seconds", "--text-tokens": "text_tokens"}


def _step_shape(args: argparse.Namespace) -> tuple[int, float, int] | None:
    """``(batch, seconds, text_tokens)`` from ``slam inspect``'s flags; None when none is given."""
    values = {flag: getattr(args, name) for flag, name in STEP_FLAGS.items()}
    given = [flag for flag, value in values.items() if value is not None]
    if not given:
        return None
    if missing := [flag for flag in STEP_FLAGS if flag not in given]:
        raise SlamError(f"slam inspect: {' '.join(given)} needs {' and '.join(missing)} too (the step's shape)")
    for flag, value in values.items():
        if not value > 0:
            raise SlamError(f"slam inspect: {flag} must be positive, got {value:g}")
    return values["--batch"], values["--seconds"], values["--text-tokens"]


def cmd_data_shard(args: argparse.Namespace) -> int:
    from slam_core.runtime.data.sharding import write_shar

    shards = write_shar(args.manifest, args.out, shard_size=args.shard_size, audio_format=args.format)
    print(f"slam data shard: {shards} shard{'s' if shards != 1 else ''} written to {args.out}")
    return 0


#: The subcommands of slam itself; a plugin's command of one of these names is reported and not used.
BUILTIN_COMMANDS = ("plugins", "spec", "inspect", "train", "infer", "export", "eval", "convert", "data")


def build_parser(load: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The ``slam`` parser: slam's own commands, then every command the installed plugins declare.

    A plugin command's factory (which adds its arguments) is imported only for the names in
    ``load``; ``None`` loads every one (``slam --help`` needs none of them).
    """
    parser = argparse.ArgumentParser(prog="slam", description="SLAM: speech, language, audio and music LLMs")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_builtin_commands(commands)
    for name, command in sorted(plugins.registry().commands.items()):
        if name in BUILTIN_COMMANDS:
            continue
        subparser = commands.add_parser(name, help=command.spec.help, description=command.spec.help)
        if load is None or name in load:
            subparser.set_defaults(run=_load_command(command, subparser))
    return parser


def _load_command(command: plugins.RegisteredCommand, parser: argparse.ArgumentParser):
    """Import a plugin command's factory and let it add its arguments; returns its ``run``."""
    try:
        run = command.spec.load_factory()(parser)
    except (Exception, SystemExit) as exc:  # a broken plugin command is a user-facing plugin problem
        raise PluginError(
            f"the command {command.name!r} of {command.plugin.label} failed to load from "
            f"{command.spec.factory!r}: {type(exc).__name__}: {exc}"
        ) from exc
    if not callable(run):
        raise PluginError(
            f"the command {command.name!r} of {command.plugin.label}: its factory {command.spec.factory!r} "
            f"returned {type(run).__name__}, expected run(args) -> int"
        )
    return run


def _add_builtin_commands(commands) -> None:

    listing = commands.add_parser("plugins", help="list installed plugins and their components")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(run=cmd_plugins)

    spec = commands.add_parser("spec", help="validate a spec or print its JSON schema")
    spec_commands = spec.add_subparsers(dest="spec_command", required=True, metavar="SUBCOMMAND")
    validate = spec_commands.add_parser("validate", help="validate a YAML/JSON pipeline spec")
    validate.add_argument("file")
    validate.add_argument(
        "--no-check-paths",
        dest="check_paths",
        action="store_false",
        help="do not check that the files and folders the spec reads exist (a spec meant for another machine)",
    )
    validate.add_argument(
        "--deep",
        action="store_true",
        help="also build the model on the meta device (no weights in memory): checks what only a build can, "
        "e.g. LoRA target_modules against the LLM's layers, a projector stride against data.max_duration_s",
    )
    validate.set_defaults(run=cmd_spec_validate)
    schema = spec_commands.add_parser("schema", help="print the JSON schema for the installed plugins")
    schema.set_defaults(run=cmd_spec_schema)

    inspect = commands.add_parser("inspect", help="parameter counts and training memory, without loading weights")
    inspect.add_argument("file")
    inspect.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], help="override the spec's train.dtype")
    inspect.add_argument("--batch", type=int, help="clips per step: estimate the memory of one training step too")
    inspect.add_argument("--seconds", type=float, help="seconds per clip in that step")
    inspect.add_argument("--text-tokens", type=int, help="target tokens per clip in that step")
    inspect.set_defaults(run=cmd_inspect)

    overrides = argparse.ArgumentParser(add_help=False)
    overrides.add_argument(
        "--set", action="append", default=[], metavar="PATH=VALUE", help="override a spec field, e.g. train.lr=3e-4"
    )
    training = commands.add_parser(
        "train",
        parents=[overrides],
        help="train a pipeline spec (resumes by default; torchrun for ddp/fsdp2/deepspeed)",
    )
    training.add_argument("spec")
    training.add_argument("--run-dir", help="run folder (default: train.output_dir)")
    start = training.add_mutually_exclusive_group()
    start.add_argument("--resume", metavar="CHECKPOINT", help="resume from this checkpoint folder")
    start.add_argument("--fresh", action="store_true", help="do not resume; refused if the run has checkpoints")
    training.add_argument("--score", action="store_true", help="decode the valid split and report the task's metrics")
    training.set_defaults(run=cmd_train)

    infer = commands.add_parser("infer", parents=[overrides], help="decode a manifest into hypotheses jsonl")
    infer.add_argument("spec", help="a spec file, or an export folder (slam export; then --manifest is needed)")
    infer.add_argument("--checkpoint", help="checkpoint or run folder (its best, else latest, checkpoint)")
    infer.add_argument("--manifest", help="manifest to decode (default: data.test_manifest)")
    infer.add_argument("--output", required=True, help="hypotheses jsonl to write")
    infer.set_defaults(run=cmd_infer)

    exporting = commands.add_parser(
        "export", help="write a trained run as a folder that loads without its spec, or in a transformers format"
    )
    exporting.add_argument("source", metavar="RUN", help="run folder (its best, else latest, checkpoint) or checkpoint")
    exporting.add_argument("out", metavar="OUT", help="the folder to write (an earlier export there is replaced)")
    exporting.add_argument(
        "--format",
        choices=["slam", "voxtral"],
        default="slam",
        help="slam: the self-describing folder slam infer/serve load (default); voxtral: transformers' "
        "VoxtralForConditionalGeneration (Whisper -> linear-projector -> Llama compositions, docs/export.md)",
    )
    exporting.add_argument(
        "--keep-adapter", action="store_true", help="keep the PEFT adapter apart instead of merging it (slam format)"
    )
    exporting.add_argument(
        "--audio-token-id",
        type=int,
        help="voxtral: the token id that marks audio positions (default: a spare special token of the tokenizer)",
    )
    exporting.set_defaults(run=cmd_export)

    scoring = commands.add_parser("eval", parents=[overrides], help="score a hypotheses jsonl")
    scoring.add_argument("hypotheses")
    choice = scoring.add_mutually_exclusive_group(required=True)
    choice.add_argument("--spec", help="score with the metrics of this spec's task")
    choice.add_argument("--metrics", help="comma-separated metric names, e.g. wer,cer")
    scoring.add_argument("--output", help="metrics JSON to write")
    scoring.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a scoring option, e.g. bleu_tokenize=zh or biasing_key=rare_words (repeatable)",
    )
    scoring.set_defaults(run=cmd_eval)

    conversion = commands.add_parser("convert", help="turn another project's checkpoint into a SLAM checkpoint")
    sources = conversion.add_subparsers(dest="convert_source", required=True, metavar="SOURCE")
    slam_llm = sources.add_parser(
        "slam-llm",
        parents=[overrides],
        help="a SLAM-LLM model.pt (projector + PEFT adapter) for the equivalent SLAM spec",
    )
    slam_llm.add_argument("checkpoint", help="the model.pt SLAM-LLM saved")
    slam_llm.add_argument("--spec", required=True, help="the equivalent SLAM spec (docs/from-slam-llm.md)")
    slam_llm.add_argument("--output", required=True, help="checkpoint folder to create")
    slam_llm.set_defaults(run=cmd_convert_slam_llm)

    data = commands.add_parser("data", help="prepare data: shard a manifest")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    shard = data_commands.add_parser(
        "shard", help="write a manifest's samples as a lhotse Shar folder (a data source like a manifest)"
    )
    shard.add_argument("manifest", help="SLAM-LLM jsonl or lhotse cut manifest")
    shard.add_argument("out", help="the new folder to write (absent or empty)")
    shard.add_argument("--shard-size", type=int, default=1000, help="samples per shard (default 1000)")
    shard.add_argument(
        "--format", choices=["flac", "wav"], default="flac", help="audio encoding (flac: lossless 16-bit; default)"
    )
    shard.set_defaults(run=cmd_data_shard)


def _chosen_command(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (slam's top level has no option that takes a value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``slam`` command: a :class:`~slam_core.errors.SlamError` (a user error, from
    the core, the runtime or any plugin) prints one ``slam: error:`` message and exits 2; anything
    else is a bug and keeps its traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # the command prints each plugin problem itself; the library's log warning would repeat it
    logging.getLogger(plugins.log.name).setLevel(logging.ERROR)
    try:
        args = build_parser(load={_chosen_command(argv)}).parse_args(argv)
        return int(args.run(args) or 0)
    except SlamError as exc:
        print(f"slam: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `slam spec schema | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
