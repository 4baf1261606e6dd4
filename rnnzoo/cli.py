"""The `rnnzoo` command line: list, summary, train, evaluate, predict, export, runs, bench, data, demo, serve,
completion.

A face over the Python API: it parses options, reads input files, and prints what the specs' `predict`
returns. Building the parser imports no torch (the examples' names, settings and presets are torch-free
cards), so `--help`, `--version`, `list`, `data list` and completion start at once; each command imports
what it needs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shlex
import sys
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from rnnzoo import __version__
from rnnzoo.errors import DataError, InputError
from rnnzoo.specs.settings import CARDS, SEED_LIMIT, TRAIN_FIELDS, Card, describe_value, did_you_mean, preset_lines

EPILOG = """examples:
  rnnzoo demo                                   # offline: train a memory network on generated stories
  rnnzoo summary babi_memnn                     # layer table with output shapes
  rnnzoo train babi_memnn --epochs 120          # faithful defaults; Ctrl-C saves, --resume continues
  rnnzoo runs                                   # the trained runs, their scores and folders
  rnnzoo evaluate babi_memnn                    # test accuracy of its latest run's best checkpoint
  rnnzoo predict babi_memnn --story "Mary moved to the bathroom." --question "Where is Mary?"
  rnnzoo export babi_memnn --format onnx        # its latest run as ONNX, checked with onnxruntime
  torchrun --nproc-per-node 2 -m rnnzoo train babi_rnn    # data-parallel training
"""
RUN_HELP = "run folder, checkpoint file, or example name (its latest run)"


class Parser(argparse.ArgumentParser):
    """argparse, with the error first (and a "did you mean") and a pointer to --help, instead of the usage
    block before it."""

    def error(self, message: str) -> NoReturn:
        match = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if match:
            choices = re.findall(r"'([^']*)'", match.group(2))
            message += did_you_mean(match.group(1), choices)
        sys.stderr.write(f"rnnzoo: error: {message}\n(see: {self.prog} --help)\n")
        raise SystemExit(2)


def predict_groups() -> dict[str, list[Card]]:
    """predict's option groups (a dataset's name) and the examples that read each."""
    groups: dict[str, list[Card]] = {}
    for card in CARDS.values():
        groups.setdefault(card.predict_group, []).append(card)
    return groups


# --- settings as options -----------------------------------------------------------------------------------


def _parser_for(annotation: Any) -> tuple[Callable[[str], Any], list[str] | None]:
    """A str -> value converter and the choices for one Config field type."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        inner, choices = _parser_for(next(a for a in args if a is not type(None)))

        def optional(text: str) -> Any:
            return None if text.lower() in ("", "none") else inner(text)

        optional.__name__ = getattr(inner, "__name__", "value")  # argparse names it in "invalid float value"
        return optional, choices
    if origin is typing.Literal:
        return str, [str(a) for a in args]
    if annotation is bool:
        def to_bool(text: str) -> bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
        return to_bool, None
    return annotation, None


def add_config_arguments(parser: argparse.ArgumentParser, card: Card, model_only: bool = False) -> None:
    """One `--field-name VALUE` option per Config field, typed, with the field's help and its default once
    (`model_only`: the fields that shape the model and its data, not how it trains)."""
    title = "model and data settings" if model_only else "settings"
    group = parser.add_argument_group(f"{card.name} {title} (defaults: the faithful preset)")
    hints = typing.get_type_hints(card.Config)
    for f in dataclasses.fields(card.Config):
        if model_only and f.name in TRAIN_FIELDS:
            continue
        convert, choices = _parser_for(hints[f.name])
        help_text = f.metadata.get("help", "")
        metavar = None if choices is not None else "true|false" if hints[f.name] is bool else f.name.upper()
        group.add_argument(
            "--" + f.name.replace("_", "-"), dest=f"cfg_{f.name}", type=convert, choices=choices,
            default=None, metavar=metavar,
            help=help_text if f.default is None else f"{help_text} (default: {describe_value(f.default)})",
        )


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg_") and v is not None}


def _example_subcommands(sub: argparse._SubParsersAction, command: str, help_text: str, usage_example: str,
                         add_options: Callable[[argparse.ArgumentParser], None], model_only: bool = False) -> None:
    """`rnnzoo COMMAND EXAMPLE [options]`, with each example's own settings and presets in its --help."""
    parser = sub.add_parser(command, help=help_text, description=help_text,
                            epilog=f"example:\n  {usage_example}", formatter_class=argparse.RawDescriptionHelpFormatter)
    per_example = parser.add_subparsers(dest="example", metavar="EXAMPLE", required=True, parser_class=Parser,
                                        help=", ".join(CARDS))
    for name, card in CARDS.items():
        presets = "presets (--preset NAME):\n  " + "\n  ".join(preset_lines(card))
        p = per_example.add_parser(name, help=card.title, description=f"{command} {name}: {card.title}. Data: "
                                   f"{card.data}; the faithful training takes {card.typical_time}.",
                                   epilog=presets, formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--preset", default="faithful", choices=list(card.presets),
                       help="named settings, listed below (default: faithful, the original's)")
        add_options(p)
        add_config_arguments(p, card, model_only)


def _count(least: int, most: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer of at least `least` (and at most `most`)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < least or (most is not None and value > most):
            raise argparse.ArgumentTypeError(f"must be at least {least}" + (f" and at most {most}" if most else "")
                                             + f", got {value}")
        return value
    return parse


DEVICE_HELP = "auto (CUDA when available; the default), cpu or cuda"


def _seed(text: str) -> int:
    """An argparse type: a training seed, 0 <= seed < SEED_LIMIT."""
    value = _count(0)(text)
    if value >= SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"must be below {SEED_LIMIT} (10**14), got {value}")
    return value


def _train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=_seed, default=0,
                   help="seed for initialization, shuffling and the validation split (default: 0)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--resume", metavar="RUN", help="continue the run in folder RUN from its last checkpoint")
    p.add_argument("--run-dir", type=Path, help="folder for this run (default: runs/<example>/<time>-s<seed>)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-test", action="store_true", help="skip the final test-set evaluation")
    p.add_argument("--tensorboard", action="store_true",
                   help="also write TensorBoard event files to RUN/tensorboard (pip install 'rnnzoo[tensorboard]')")


def _bench_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batches", type=_count(1), default=30, help="timed training steps (default: 30)")
    p.add_argument("--warmup", type=_count(0), default=3, help="untimed steps first (default: 3) ...")
    p.add_argument("--warmup-seconds", type=float, default=10.0,
                   help="... and at least this long (default: 10; a CPU process starts slower than it runs)")
    p.add_argument("--device", default="cpu", help="cpu (the default) or cuda")
    p.add_argument("--threads", type=_count(1), help="torch CPU threads (default: PyTorch's choice)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _predict_parser(sub: argparse._SubParsersAction) -> None:
    text = "answer new inputs with a trained run"
    p = sub.add_parser("predict", help=text, description=text + "; each example reads the options of its group",
                       epilog="examples:\n  " + "\n  ".join(
                           f"rnnzoo predict {c.name} {c.predict_options}" for c in CARDS.values()),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", metavar="RUN", help=RUN_HELP)
    p.add_argument("--checkpoint", default="best", choices=["best", "last"],
                   help="best (on validation; the default) or last")
    p.add_argument("--device", default="cpu", help="cpu (the default), cuda or auto")
    p.add_argument("--json", action="store_true", help="print the results as JSON, one object a line")
    groups = predict_groups()
    added: dict[str, list[argparse.Action]] = {}

    def group(name: str) -> argparse._ArgumentGroup:
        return p.add_argument_group(f"{name} ({', '.join(c.name for c in groups[name])})")

    g = group("bAbI")
    added["bAbI"] = [g.add_argument("--story", help="the story, sentences ending with '.'"),
                     g.add_argument("--story-file", type=Path, help="... or a UTF-8 file that holds it"),
                     g.add_argument("--question", help="the question, e.g. 'Where is Mary?'")]
    g = group("IMDB")
    added["IMDB"] = [g.add_argument("--text", action="append", help="a review (may be repeated)"),
                     g.add_argument("--file", type=Path,
                                    help="reviews: a text file with one per line, or a CSV with --column"),
                     g.add_argument("--column", help="the CSV column that holds the review text")]
    g = group("MNIST")
    added["MNIST"] = [g.add_argument("--image", nargs="+", type=Path,
                                     help="image file(s) of a digit, any size or format"),
                      g.add_argument("--show", type=Path,
                                     help="write the 28x28 input(s) as the model saw them to this PNG")]
    g = group("moving squares")
    added["moving squares"] = [
        g.add_argument("--movie", "--which", dest="movie", metavar="N|PATH",
                       help="a generated movie's number (default: 1004, the original's), or your own movie: "
                            "a .npy array (frames, H, W), a GIF or a folder of PNG frames"),
        g.add_argument("--resize", action="store_true", help="scale your movie's frames to the run's size"),
        g.add_argument("--frames", type=_count(2), help="frames fed to the model (default: 7; for shorter movies, "
                                                        "half)"),
        g.add_argument("--ahead", type=_count(1), help="frames predicted one at a time (default: 8, or as many "
                                                       "as the movie has)"),
        g.add_argument("--out", type=Path, help="folder for the pictures (default: the run folder)"),
        g.add_argument("--test-movies", type=_count(0), default=0,
                       help="also score the rollout over the first N test movies against the copy-last-frame "
                            "baseline")]
    assert set(added) == set(groups), "every predict group has its options"
    # each option's group, to refuse it on another group's run
    p.set_defaults(predict_option_groups={a.dest: (name, a) for name, actions in added.items() for a in actions})


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="rnnzoo", description="The seven classic Keras recurrent-network examples, in PyTorch.",
                    epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"rnnzoo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)

    text = "the examples: task, data, presets and training time"
    sub.add_parser("list", help=text, description=text)
    _example_subcommands(sub, "summary", "print a Keras-style table of layers, output shapes and parameters",
                         "rnnzoo summary babi_rnn", lambda p: None, model_only=True)
    _example_subcommands(sub, "train", "train an example (faithful defaults; override any setting)",
                         "rnnzoo train babi_memnn --epochs 40 --attention memory", _train_options)
    _example_subcommands(sub, "bench", "training throughput on synthetic inputs (samples/s, FLOPs/sample)",
                         "rnnzoo bench babi_memnn --json", _bench_options)

    text = "loss and accuracy of a trained run on its test (or validation) split"
    p = sub.add_parser("evaluate", help=text, description=text,
                       epilog="example:\n  rnnzoo evaluate runs/babi_memnn/20261127-101500-s0",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", metavar="RUN", help=RUN_HELP)
    p.add_argument("--checkpoint", default="best", choices=["best", "last"],
                   help="best (on validation; the default) or last (the latest epoch, or where Ctrl-C stopped)")
    p.add_argument("--split", default="test", choices=["test", "val"], help="the split to score (default: test)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object")

    _predict_parser(sub)

    text = "write a trained run as ONNX (for inference runtimes) or safetensors (its weights, for sharing)"
    p = sub.add_parser("export", help=text, description=text + "; needs the export extra: pip install "
                       "'rnnzoo[export]'", formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  rnnzoo export babi_memnn --format onnx            # runs/babi_memnn/<id>/"
                              "export/model.onnx\n  rnnzoo export runs/imdb_lstm/20261127-101500-s0 --format "
                              "safetensors --out imdb_lstm.safetensors")
    p.add_argument("run", metavar="RUN", help=RUN_HELP)
    p.add_argument("--format", required=True, metavar="onnx|safetensors",
                   help="onnx: the model, checked against PyTorch with onnxruntime; safetensors: the weights, "
                        "with the settings and data facts beside them as JSON")
    p.add_argument("--out", type=Path, metavar="PATH",
                   help="the file to write (default: RUN/export/model.onnx or .safetensors); one that exists is "
                        "replaced, and the command says so")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"],
                   help="best (on validation; the default) or last")

    text = "the trained runs: example, start, epochs, best validation score, test score, folder"
    p = sub.add_parser("runs", help=text, description=text + " (under $RNNZOO_RUNS, default ./runs)")
    p.add_argument("example", nargs="?", metavar="EXAMPLE", help="only this example's runs")
    p.add_argument("--json", action="store_true", help="one JSON object a line")

    p = sub.add_parser("data", help="the datasets: list, fetch, verify, add",
                       epilog="examples:\n  rnnzoo data list\n  rnnzoo data fetch babi\n"
                              "  rnnzoo data add babi ~/Downloads/tasks_1-20_v1-2.tar.gz\n"
                              "  RNNZOO_MIRROR=/path/to/folder rnnzoo data fetch babi   # offline mirror",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    dsub = p.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=Parser)
    dsub.add_parser("list", help="each dataset's files: missing, present or corrupt, and where")
    for action, text in (("fetch", "download what is missing or corrupt (mirrors first)"),
                         ("verify", "check the cached files against their checksums (reads every byte)")):
        dsub.add_parser(action, help=text, description=text).add_argument(
            "dataset", metavar="DATASET", help="babi, imdb or mnist")
    text = "import a file you already have (verified, then copied into the cache)"
    q = dsub.add_parser("add", help=text, description=text)
    q.add_argument("dataset", metavar="DATASET", help="babi, imdb or mnist")
    q.add_argument("path", type=Path, metavar="PATH", help="the file, e.g. a downloaded archive")

    text = "offline demo: a memory network learns generated bAbI-style stories, then answers new questions"
    p = sub.add_parser("demo", help=text, description=text)
    p.add_argument("--seed", type=_count(0), default=0, help="seed for the stories, initialization and shuffling")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--epochs", type=_count(1), help="override the demo's epochs (default: 40)")

    text = "serve the trained examples as a local web page and JSON API (needs: pip install 'rnnzoo[web]')"
    p = sub.add_parser("serve", help=text, description=text + "; one panel per example family with a run",
                       epilog="examples:\n  rnnzoo serve                       # the latest run of each example\n"
                              "  rnnzoo serve --quick               # first train quick runs where none exist\n"
                              "  rnnzoo serve runs/babi_memnn/20261127-101500-s0 --port 8080\n"
                              "  curl -s localhost:8000/api/babi_memnn/predict -d '{\"story\": \"Mary moved to "
                              "the bathroom.\", \"question\": \"Where is Mary?\"}'",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="*", metavar="RUN", help=RUN_HELP + " (default: the latest run of each example)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this computer "
                                                       "only; another one warns)")
    p.add_argument("--port", type=_count(1, 65535), default=8000, help="port (default: 8000)")
    p.add_argument("--quick", action="store_true", help="first train the examples that have no run, on generated "
                                                        "data: the offline preset where there is one, else tiny")

    text = "print a shell completion script"
    p = sub.add_parser("completion", help=text, description=text,
                       epilog="examples:\n  rnnzoo completion bash > ~/.local/share/bash-completion/completions/rnnzoo"
                              "\n  rnnzoo completion zsh > ~/.zfunc/_rnnzoo",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("shell", choices=["bash", "zsh"], help="bash or zsh")
    return parser


# --- commands --------------------------------------------------------------------------------------------


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def cmd_list(args: argparse.Namespace) -> None:
    for name, card in CARDS.items():
        cfg = card.config()
        print(f"{name:<24} {card.title}")
        print(f"{'':<24} data: {card.data}; faithful: {plural(cfg.epochs, 'epoch')}, batch {cfg.batch_size}, "
              f"{cfg.optimizer}, {card.typical_time}")
        others = [f"{p}{' (generated data)' if preset.generated else ''}" for p, preset in card.presets.items()
                  if p != "faithful"]
        print(f"{'':<24} --preset {', '.join(others)}")


def _config(card: Card, args: argparse.Namespace) -> Any:
    return card.config(args.preset, **config_overrides(args))


def cmd_summary(args: argparse.Namespace) -> None:
    import torch

    from rnnzoo.specs import get_example
    from rnnzoo.summary import summary_table

    example = get_example(args.example)
    cfg = _config(example.card, args)
    meta = example.shape_meta(cfg)
    torch.manual_seed(0)
    model = example.build_model(cfg, meta)
    inputs, _ = example.synthetic_batch(cfg, meta, 2, torch.Generator().manual_seed(0))
    print(f"{example.name}: {example.title}")
    print(summary_table(model, inputs, example.summary_dynamic_axes))


def cmd_train(args: argparse.Namespace) -> int:
    card = CARDS[args.example]
    resume = None
    if args.resume:
        given = Path(args.resume)
        if given.is_file() and given.name != "last.pt":  # e.g. best.pt
            folder = given.parent.parent if given.parent.name == "checkpoints" else given.parent
            raise InputError(f"--resume continues a run from its checkpoints/last.pt, not from {given.name}: give "
                             f"the run folder, --resume {folder}")
        overrides = config_overrides(args)
        changed = ["--" + name.replace("_", "-") for name in sorted(set(overrides) - {"epochs"})]
        changed += [option for option, given in (("--preset", args.preset != "faithful"), ("--seed", args.seed != 0),
                                                  ("--run-dir", args.run_dir is not None)) if given]
        if changed:
            raise InputError("--resume continues a run with its own settings; only --epochs may change "
                             f"(given: {', '.join(changed)})")
        cfg = card.config(epochs=overrides["epochs"]) if "epochs" in overrides else None  # only epochs is read
    else:
        cfg = _config(card, args)
    from rnnzoo.runs import find_run
    from rnnzoo.specs import get_example
    from rnnzoo.training import train

    if args.resume:
        resume = find_run(args.resume)
    else:
        preset = card.presets[args.preset]
        if preset.generated:
            print(f"note: --preset {args.preset} trains on generated data, not {card.data} ({preset.about})",
                  file=sys.stderr)
    result = train(get_example(args.example), cfg, seed=args.seed, device=args.device, run_dir=args.run_dir,
                   resume=resume, progress=not args.quiet, test=not args.no_test,
                   command=shlex.join(["rnnzoo", *sys.argv[1:]]), tensorboard=args.tensorboard)
    return 130 if result.stopped else 0  # Ctrl-C: the shell's code for an interrupt, so `train && ...` stops


def _load(args: argparse.Namespace) -> Any:
    """The run that RUN names, loaded on --device; says on stderr which one it is."""
    from rnnzoo.runs import load_run
    from rnnzoo.training import resolve_device

    run = load_run(args.run, args.checkpoint, resolve_device(args.device))
    checkpoint = Path(args.run).name if Path(args.run).is_file() else f"{args.checkpoint} checkpoint"
    print(f"run: {run.path.resolve()} ({run.name}, {checkpoint}, epoch {run.epoch})", file=sys.stderr)
    return run


def cmd_evaluate(args: argparse.Namespace) -> None:
    import torch

    from rnnzoo.training import evaluate

    run = _load(args)
    torch.manual_seed(run.checkpoint["seed"])
    data = run.example.load_data(run.config, run.checkpoint["seed"])
    split = data.test if args.split == "test" else data.val
    device = next(run.model.parameters()).device
    result = evaluate(run.model, run.example, split, run.config.batch_size, device)
    given_file = Path(args.run).is_file()  # a checkpoint file given as RUN is the one evaluated
    checkpoint = Path(args.run).name if given_file else args.checkpoint
    report = {"run": str(run.path), "checkpoint": checkpoint, "epoch": run.epoch, "split": args.split,
              "examples": len(split), **result}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{run.name} {run.path} ({args.run if given_file else args.checkpoint + ' checkpoint'}, "
              f"epoch {report['epoch']}), {args.split} split of {len(split):,} examples:")
        print("  " + "  ".join(f"{k} {v:.4f}" for k, v in result.items()))


def _warn(warnings: Sequence[str], where: str = "") -> None:
    for w in warnings:
        print(f"warning: {where + ': ' if where else ''}{w}", file=sys.stderr)


def cmd_predict(args: argparse.Namespace) -> None:
    from rnnzoo import render

    run = _load(args)
    card = run.example.card
    for dest, (group, option) in args.predict_option_groups.items():  # an option of another example's group
        if group != card.predict_group and getattr(args, dest) != option.default:
            raise InputError(f"{option.option_strings[0]} is for {group} runs; {args.run} is a "
                             f"{run.name} run (see: rnnzoo predict --help)")
    out = sys.stdout
    if card.predict_group == "bAbI":
        from rnnzoo.readers import read_story

        story = read_story(args.story, args.story_file)
        if not story.strip() or not (args.question or "").strip():
            raise InputError(f"{run.name} needs both --story (or --story-file) and --question, e.g. "
                             f"{card.predict_options}")
        answer = run.predict(story, args.question)
        _warn(answer.warnings)
        out.write((json.dumps(answer.to_dict()) if args.json else render.babi_text(answer)) + "\n")
    elif card.predict_group == "IMDB":
        from rnnzoo.readers import read_reviews

        reviews = list(read_reviews(args.text, args.file, args.column, card.predict_options))
        scores = run.predict([text for _, text in reviews], names=[where for where, _ in reviews])
        for (where, text), score in zip(reviews, scores):
            _warn(score.warnings, where)
            if args.json:
                out.write(json.dumps({"review": where, **score.to_dict()}) + "\n")
            else:
                out.write(render.review_text(where, text, score, run.meta["maxlen"]) + "\n")
    elif card.predict_group == "MNIST":
        if not args.image:
            raise InputError(f"{run.name} needs --image with one or more image files, e.g. "
                             f"rnnzoo predict {run.name} {card.predict_options}")
        if args.show is not None:
            _check_show(args.show, args.image)
        digits = run.predict(list(args.image))
        for d in digits:
            if args.json:
                out.write(json.dumps({k: v for k, v in d.to_dict().items() if k != "seen"}) + "\n")
            else:
                out.write(render.digit_text(d) + "\n")
        if args.show is not None:
            from rnnzoo.data import mnist

            replaced = args.show.exists()
            mnist.save_preview([d.seen for d in digits], args.show)
            print(f"{'replaced' if replaced else 'wrote'} {args.show}: the input{'s' if len(digits) > 1 else ''} "
                  "as the model saw " + ("them" if len(digits) > 1 else "it"), file=sys.stderr)
    else:
        _predict_movie(run, args, out)


def _check_show(show: Path, images: Sequence[Path]) -> None:
    """--show must not overwrite an input image or a folder."""
    if show.is_dir():
        raise InputError(f"--show {show} is a folder; give a file name such as seen.png")
    for image in images:
        try:
            same = show.exists() and image.exists() and show.samefile(image)
        except OSError:
            same = False
        if same or show.resolve() == image.resolve():
            raise InputError(f"--show {show} would overwrite the input image {image}; give another file name")


def _predict_movie(run: Any, args: argparse.Namespace, out: Any) -> None:
    from rnnzoo import render

    movie: Any = args.movie
    if movie is not None and movie.strip().lstrip("-").isdigit():
        movie = int(movie)
    bar = None
    if args.test_movies:
        from tqdm import tqdm

        bar = tqdm(total=args.test_movies, desc="test movies", unit="movie", file=sys.stderr, leave=False,
                   disable=None)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)

    try:
        result = run.predict(movie, args.frames, args.ahead, test_movies=args.test_movies, resize=args.resize,
                             progress=progress)
    finally:
        if bar is not None:
            bar.close()
    stem = f"conv_lstm_movie{result.movie}" if result.movie is not None else \
        f"conv_lstm_{re.sub(r'[^A-Za-z0-9_.-]+', '_', Path(str(args.movie)).stem) or 'movie'}"
    png, gif = render.movie_pictures(result, args.out or run.path, stem)
    if args.json:
        report = {k: v for k, v in result.to_dict().items() if k not in ("given", "predicted", "true")}
        out.write(json.dumps({**report, "png": str(png), "gif": str(gif)}) + "\n")
        return
    out.write(render.movie_text(result) + f"\nwrote {png}\nwrote {gif}\n")


def cmd_runs(args: argparse.Namespace) -> None:
    from rnnzoo.runs import list_runs, runs_root

    if args.example is not None and args.example not in CARDS:
        raise InputError(f"unknown example {args.example!r}{did_you_mean(args.example, CARDS)}; choose from "
                         f"{', '.join(CARDS)}")
    runs = [r for r in list_runs() if args.example in (None, r.example)]
    if args.json:
        for r in runs:
            print(json.dumps({**dataclasses.asdict(r), "path": str(r.path)}))
        return
    if not runs:
        print(f"no runs under {runs_root().resolve()}/ yet; train one with: rnnzoo train EXAMPLE --preset tiny",
              file=sys.stderr)
        return
    print(f"{'example':<24} {'started':<16} {'epochs':>9}  {'best val':>14}  {'test':>14}  folder")
    for r in runs:
        epochs = f"{r.epochs_done}/{r.epochs}" if r.epochs else str(r.epochs_done)
        best = f"{r.metric} {r.best:.4f}" if r.best is not None else "-"
        test = r.test.get(r.metric) if r.test else None
        print(f"{r.example:<24} {r.started:<16} {epochs:>9}  {best:>14}  "
              f"{(f'{r.metric} {test:.4f}' if isinstance(test, float) else '-'):>14}  {r.path}")


def cmd_export(args: argparse.Namespace) -> int:
    from rnnzoo.export import ExportError, export_run

    try:
        result = export_run(args.run, args.format, args.out, args.checkpoint)
    except ExportError as exc:  # not the user's mistake, and no traceback: the graph could not be made faithful
        print(f"rnnzoo: error: {exc}", file=sys.stderr)
        return 1
    print(f"run: {result.source}", file=sys.stderr)
    for path, replaced in result.files:
        print(f"{'replaced' if replaced else 'wrote'} {path}")
    if result.inputs is not None:
        print("inputs " + ", ".join(f"{name} ({', '.join(map(str, shape))})" for name, shape in result.inputs.items())
              + " -> logits")
    if result.max_abs_diff is not None:
        print("onnxruntime vs PyTorch, max abs difference: " + ", ".join(
            f"{diff:.2g} (batch {batch})" for batch, diff in result.max_abs_diff.items()))
    return 0


def cmd_bench(args: argparse.Namespace) -> None:
    if not args.warmup_seconds >= 0:
        raise InputError(f"--warmup-seconds must be at least 0, got {args.warmup_seconds}")
    import torch

    from rnnzoo.bench import run_bench
    from rnnzoo.specs import get_example
    from rnnzoo.training import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    example = get_example(args.example)
    result = run_bench(example, _config(example.card, args), batches=args.batches, warmup=args.warmup,
                       warmup_seconds=args.warmup_seconds, device=str(resolve_device(args.device)))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['example']} rnnzoo-torch {result['samples_per_s']} samples/s "
              f"({result['device']}, {plural(result['threads'], 'thread')}, batch {result['batch_size']}, "
              f"{result['forward_flops_per_sample'] / 1e6:.2f} MFLOP/sample forward)")


def _file_state(state: str, path: Path, detail: str) -> str:
    """One line of `rnnzoo data list|verify`: state, path, and why, for a file that is not present."""
    return f"{state:<8} {path}" + (f"  ({detail})" if detail and state != "present" else "")


def cmd_data(args: argparse.Namespace) -> None:
    from rnnzoo.data import DATASETS, cache

    if args.action == "list":
        print(f"cache: {cache.cache_home()}")
        for ds in DATASETS.values():
            for res in ds.resources:
                print(f"{ds.name:<8} {_file_state(*cache.state(ds, res))}")
        return
    if args.dataset not in DATASETS:
        raise InputError(f"unknown dataset {args.dataset!r}{did_you_mean(args.dataset, DATASETS)}; choose from "
                         f"{', '.join(DATASETS)}")
    ds = DATASETS[args.dataset]
    if args.action == "fetch":
        for name, path in cache.fetch(ds).items():
            print(f"ok {name}: {path}")
    elif args.action == "verify":
        bad = 0
        for res in ds.resources:
            state, path, detail = cache.state(ds, res, rehash=True)  # hash every file: no stamp is trusted
            print(_file_state(state, path, detail))
            bad += state != "present"
        if bad:
            raise DataError(f"{bad} file(s) of {ds.name} missing or corrupt; run: rnnzoo data fetch {ds.name}")
    elif args.action == "add":
        if not args.path.is_file():
            raise InputError(f"no file at {args.path}")
        print(f"added {cache.add(ds, args.path)}")


def cmd_demo(args: argparse.Namespace) -> int:
    from rnnzoo.demo import run_demo

    accuracy = run_demo(seed=args.seed, device=args.device, epochs=args.epochs)
    return 130 if accuracy is None else 0  # None: stopped with Ctrl-C


def cmd_serve(args: argparse.Namespace) -> None:
    from rnnzoo.web.server import serve

    serve(args.runs, host=args.host, port=args.port, quick=args.quick)


def cmd_completion(args: argparse.Namespace) -> None:
    import shtab

    print(shtab.complete(build_parser(), shell=args.shell))


COMMANDS = {"list": cmd_list, "summary": cmd_summary, "train": cmd_train, "evaluate": cmd_evaluate,
            "predict": cmd_predict, "export": cmd_export, "runs": cmd_runs, "bench": cmd_bench, "data": cmd_data,
            "demo": cmd_demo, "serve": cmd_serve, "completion": cmd_completion}


def _innermost_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the subcommand that `args` chose (e.g. `train babi_memnn`), to report with its usage."""
    while True:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        chosen = getattr(args, subs[0].dest, None) if subs else None
        if chosen not in (subs[0].choices if subs else {}):
            return parser
        parser = subs[0].choices[chosen]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # a misspelled option: name the closest one of the subcommand it was given to
            inner = _innermost_parser(parser, args)
            options = [o for a in inner._actions for o in a.option_strings]
            first = unknown[0].split("=", 1)[0]
            hint = did_you_mean(first, options) if first.startswith("--") else ""
            inner.error(f"unrecognized arguments: {' '.join(unknown)}{hint}")
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    try:
        return COMMANDS[args.command](args) or 0
    except (InputError, DataError) as exc:
        print(f"rnnzoo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nrnnzoo: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
