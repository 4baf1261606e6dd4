"""The `rnnzoo` command line: list, summary, train, evaluate, predict, bench, data, demo."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from rnnzoo.data.cache import DataError
from rnnzoo.errors import InputError
from rnnzoo.examples import EXAMPLES, get_example
from rnnzoo.examples.base import Example, add_config_arguments, config_overrides

EPILOG = """examples:
  rnnzoo demo                                   # offline: train a memory network on generated stories
  rnnzoo summary babi_memnn                     # layer table with output shapes
  rnnzoo train babi_memnn --epochs 120          # faithful defaults; Ctrl-C saves, --resume continues
  rnnzoo evaluate runs/babi_memnn/<id>          # test accuracy of the best (validation) checkpoint
  rnnzoo predict babi_memnn --story "Mary moved to the bathroom." --question "Where is Mary?"
  torchrun --nproc-per-node 2 -m rnnzoo train babi_rnn    # data-parallel training
"""


def predict_groups() -> dict[str, list[Example]]:
    """predict's option groups (a dataset's name) and the examples that read each."""
    groups: dict[str, list[Example]] = {}
    for example in EXAMPLES.values():
        groups.setdefault(example.predict_group, []).append(example)
    return groups


def _example_subcommands(sub: argparse._SubParsersAction, command: str, help_text: str, usage_example: str,
                         add_options) -> None:
    """`rnnzoo COMMAND EXAMPLE [options]`, with each example's own settings in its --help."""
    parser = sub.add_parser(command, help=help_text, description=help_text,
                            epilog=f"example:\n  {usage_example}", formatter_class=argparse.RawDescriptionHelpFormatter)
    per_example = parser.add_subparsers(dest="example", metavar="EXAMPLE", required=True,
                                        help=", ".join(EXAMPLES))
    for name, example in EXAMPLES.items():
        p = per_example.add_parser(name, help=example.title, description=f"{command} {name}: {example.title}")
        p.add_argument("--preset", default="faithful", choices=list(example.presets),
                       help=f"named settings: {', '.join(example.presets)}; faithful (the original's) is the "
                            "default, small and tiny are quick runs, the others are measured in the README")
        add_options(p)
        add_config_arguments(p, example)


def _count(least: int):
    """An argparse type: an integer of at least `least`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
        return value
    return parse


def _seed(text: str) -> int:
    """An argparse type: a training seed, 0 <= seed < rnnzoo.training.SEED_LIMIT."""
    from rnnzoo.training import SEED_LIMIT

    value = _count(0)(text)
    if value >= SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"must be below {SEED_LIMIT} (10**14), got {value}")
    return value


def _train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=_seed, default=0, help="seed for initialization, shuffling, the validation split")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--resume", metavar="RUN", help="continue the run in folder RUN from its last checkpoint")
    p.add_argument("--run-dir", type=Path, help="folder for this run (default runs/<example>/<time>-s<seed>)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-test", action="store_true", help="skip the final test-set evaluation")
    p.add_argument("--tensorboard", action="store_true",
                   help="also write TensorBoard event files to RUN/tensorboard (pip install 'rnnzoo[tensorboard]')")


def _bench_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batches", type=_count(1), default=30, help="timed training steps (default 30)")
    p.add_argument("--warmup", type=_count(0), default=3, help="untimed steps first (default 3) ...")
    p.add_argument("--warmup-seconds", type=float, default=10.0,
                   help="... and at least this long (default 10: a CPU process starts slower than it runs)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--threads", type=_count(1), help="torch CPU threads (default: PyTorch's choice)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnzoo", description="The seven classic Keras recurrent-network examples, in PyTorch.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    text = "the examples: task, data and named presets"
    sub.add_parser("list", help=text, description=text)
    _example_subcommands(sub, "summary", "print a Keras-style table of layers, output shapes and parameters",
                         "rnnzoo summary babi_rnn", lambda p: None)
    _example_subcommands(sub, "train", "train an example (faithful defaults; override any setting)",
                         "rnnzoo train babi_memnn --epochs 40 --attention memory", _train_options)
    _example_subcommands(sub, "bench", "training throughput on synthetic inputs (samples/s, FLOPs/sample)",
                         "rnnzoo bench babi_memnn --json", _bench_options)

    text = "loss and accuracy of a trained run on its test (or validation) split"
    p = sub.add_parser("evaluate", help=text, description=text,
                       epilog="example:\n  rnnzoo evaluate runs/babi_memnn/20261127-101500-s0",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", metavar="RUN", help="run folder, checkpoint file, or example name (its latest run)")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"],
                   help="best (on validation, the default) or last (the latest epoch, or where Ctrl-C stopped)")
    p.add_argument("--split", default="test", choices=["test", "val"], help="the split to score (default test)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    text = "answer new inputs with a trained run"
    p = sub.add_parser("predict", help=text, description=text + "; each example reads the options of its group",
                       epilog="examples:\n  " + "\n  ".join(
                           f"rnnzoo predict {e.name} {e.predict_options}" for e in EXAMPLES.values()),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", metavar="RUN", help="run folder, checkpoint file, or example name (its latest run)")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"],
                   help="best (on validation, the default) or last")
    owners: dict[str, tuple[str, argparse.Action]] = {}  # each group option's group, to refuse it on other runs
    for group, examples in predict_groups().items():
        options = p.add_argument_group(f"{group} ({', '.join(e.name for e in examples)})")
        added = examples[0].add_predict_arguments(options)
        owners.update({option.dest: (group, option) for option in added})
    p.set_defaults(predict_option_groups=owners)
    p.add_argument("--json", action="store_true", help="machine-readable output where supported")

    p = sub.add_parser("data", help="the datasets: list, fetch, verify, add",
                       epilog="examples:\n  rnnzoo data list\n  rnnzoo data fetch babi\n"
                              "  rnnzoo data add babi ~/Downloads/tasks_1-20_v1-2.tar.gz\n"
                              "  RNNZOO_MIRROR=/path/to/folder rnnzoo data fetch babi   # offline mirror",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    dsub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    dsub.add_parser("list", help="each dataset's files: missing, present or corrupt, and where")
    for action, text in (("fetch", "download what is missing or corrupt (mirrors first)"),
                         ("verify", "check the cached files against their checksums")):
        dsub.add_parser(action, help=text, description=text).add_argument(
            "dataset", metavar="DATASET", help="babi, imdb or mnist")
    text = "import a file you already have (verified, then copied into the cache)"
    q = dsub.add_parser("add", help=text, description=text)
    q.add_argument("dataset", metavar="DATASET", help="babi, imdb or mnist")
    q.add_argument("path", type=Path, metavar="PATH", help="the file, e.g. a downloaded archive")

    text = "offline demo: a memory network learns generated bAbI-style stories, then answers new questions"
    p = sub.add_parser("demo", help=text, description=text)
    p.add_argument("--seed", type=_count(0), default=0, help="seed for the stories, initialization and shuffling")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--epochs", type=_count(1), help="override the demo's epochs (default 40)")
    return parser


# --- commands --------------------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> None:
    for name, example in EXAMPLES.items():
        cfg = example.config()
        presets = ", ".join(p for p in example.presets if p != "faithful")
        print(f"{name:<26} {example.title}  [epochs {cfg.epochs}, batch {cfg.batch_size}, {cfg.optimizer}"
              f"{'; --preset ' + presets if presets else ''}]")


def _config(example: Example, args: argparse.Namespace):
    return example.config(args.preset, **config_overrides(args))


def cmd_summary(args: argparse.Namespace) -> None:
    import torch

    from rnnzoo.summary import summary_table

    example = get_example(args.example)
    cfg = _config(example, args)
    meta = example.shape_meta(cfg)
    torch.manual_seed(0)
    model = example.build_model(cfg, meta)
    inputs, _ = example.synthetic_batch(cfg, meta, 2, torch.Generator().manual_seed(0))
    print(f"{example.name}: {example.title}")
    print(summary_table(model, inputs, example.summary_dynamic_axes))


def cmd_train(args: argparse.Namespace) -> int:
    from rnnzoo.runs import find_run
    from rnnzoo.training import train

    example = get_example(args.example)
    resume = None
    if args.resume:
        resume = find_run(args.resume)
        if Path(args.resume).is_file() and Path(args.resume).name != "last.pt":  # e.g. best.pt
            raise InputError(f"--resume continues a run from its checkpoints/last.pt, not from "
                             f"{Path(args.resume).name}: give the run folder, --resume {resume}")
        overrides = config_overrides(args)
        changed = ["--" + name.replace("_", "-") for name in sorted(set(overrides) - {"epochs"})]
        changed += [option for option, given in (("--preset", args.preset != "faithful"), ("--seed", args.seed != 0),
                                                  ("--run-dir", args.run_dir is not None)) if given]
        if changed:
            raise InputError("--resume continues a run with its own settings; only --epochs may change "
                             f"(given: {', '.join(changed)})")
        cfg = example.config(epochs=overrides["epochs"]) if "epochs" in overrides else None  # only epochs is read
    else:
        cfg = _config(example, args)
    result = train(example, cfg, seed=args.seed, device=args.device, run_dir=args.run_dir, resume=resume,
                   progress=not args.quiet, test=not args.no_test, command=shlex.join(["rnnzoo", *sys.argv[1:]]),
                   tensorboard=args.tensorboard)
    return 130 if result.stopped else 0  # Ctrl-C: the shell's code for an interrupt, so `train && ...` stops


def cmd_evaluate(args: argparse.Namespace) -> None:
    import torch

    from rnnzoo.runs import load_run
    from rnnzoo.training import evaluate, resolve_device

    device = resolve_device(args.device)
    run = load_run(args.run, args.checkpoint, device)
    torch.manual_seed(run.checkpoint["seed"])
    data = run.example.load_data(run.config, run.checkpoint["seed"])
    split = data.test if args.split == "test" else data.val
    result = evaluate(run.model, run.example, split, run.config.batch_size, device)
    given_file = Path(args.run).is_file()  # a checkpoint file given as RUN is the one evaluated
    checkpoint = Path(args.run).name if given_file else args.checkpoint
    report = {"run": str(run.path), "checkpoint": checkpoint, "epoch": run.checkpoint["epoch"],
              "split": args.split, "examples": len(split), **result}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{run.example.name} {run.path} ({args.run if given_file else args.checkpoint + ' checkpoint'}, "
              f"epoch {report['epoch']}), "
              f"{args.split} split of {len(split):,} examples:")
        print("  " + "  ".join(f"{k} {v:.4f}" for k, v in result.items()))


def cmd_predict(args: argparse.Namespace) -> None:
    from rnnzoo.runs import load_run

    run = load_run(args.run, args.checkpoint)
    for dest, (group, option) in args.predict_option_groups.items():  # an option of another example's group
        if group != run.example.predict_group and getattr(args, dest) != option.default:
            raise InputError(f"{option.option_strings[0]} is for {group} runs; {args.run} is a "
                             f"{run.example.name} run (see: rnnzoo predict --help)")
    run.example.predict(run, args, sys.stdout)


def cmd_bench(args: argparse.Namespace) -> None:
    if not args.warmup_seconds >= 0:
        raise InputError(f"--warmup-seconds must be at least 0, got {args.warmup_seconds}")
    import torch

    from rnnzoo.bench import run_bench
    from rnnzoo.training import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    example = get_example(args.example)
    result = run_bench(example, _config(example, args), batches=args.batches, warmup=args.warmup,
                       warmup_seconds=args.warmup_seconds,
                       device=str(resolve_device(args.device)))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['example']} rnnzoo-torch {result['samples_per_s']} samples/s "
              f"({result['device']}, {result['threads']} threads, batch {result['batch_size']}, "
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
        raise InputError(f"unknown dataset {args.dataset!r}; choose from {', '.join(DATASETS)}")
    ds = DATASETS[args.dataset]
    if args.action == "fetch":
        for name, path in cache.fetch(ds).items():
            print(f"ok {name}: {path}")
    elif args.action == "verify":
        bad = 0
        for res in ds.resources:
            state, path, detail = cache.state(ds, res)
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


COMMANDS = {"list": cmd_list, "summary": cmd_summary, "train": cmd_train, "evaluate": cmd_evaluate,
            "predict": cmd_predict, "bench": cmd_bench, "data": cmd_data, "demo": cmd_demo}


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
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # a misspelled option: show the usage of the subcommand it was given to, not the top level's
        _innermost_parser(parser, args).error(f"unrecognized arguments: {' '.join(unknown)}")
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
