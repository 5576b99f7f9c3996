"""The ``seqrec`` command: data, train, evaluate, recommend.

Bad input (a config key, a file, an unknown id) prints one line naming the problem, no traceback,
and exits with status 2. Heavy imports (torch, Lightning) happen inside the commands, so
``seqrec --help`` is instant.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from seqrec.config import ConfigError

EXIT_BAD_INPUT = 2


def _quiet() -> None:
    """Lightning's banner lines and a third-party deprecation notice say nothing to users.

    Lightning sets its logger's level when first imported, so it is imported here first.
    """
    import lightning.pytorch  # noqa: F401

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")


# ---------------------------------------------------------------- data


def _data_fetch(args: argparse.Namespace) -> None:
    from seqrec.data.datasets import fetch

    print(fetch(args.name, source=args.source))


def _data_stats(args: argparse.Namespace) -> None:
    from seqrec.config import DataConfig
    from seqrec.data.corpus import build_corpus
    from seqrec.data.stats import corpus_stats, format_feature_stats, format_stats
    from seqrec.training.prepare import load_features, read_frame

    data = DataConfig(dataset=args.dataset, format=args.format)
    frame = read_frame(data)
    corpus = build_corpus(frame)
    print(format_stats(corpus_stats(corpus), title=args.dataset))
    for which, vocabulary in (("item", corpus.items), ("user", corpus.users)):
        table = load_features(data, which, frame, vocabulary)
        if table is not None:
            print("\n" + format_feature_stats(table, which))


# ---------------------------------------------------------------- train / evaluate / recommend


def _train(args: argparse.Namespace) -> None:
    from seqrec.config import parse_override
    from seqrec.pipeline import resume, train
    from seqrec.training.allocator import keep_freed_memory

    keep_freed_memory()  # steadier and faster CPU training steps, see allocator.py

    if args.resume:
        if args.config or args.overrides:
            raise ConfigError("--resume RUN continues a run with its saved config; give no CONFIG")
        run = resume(args.resume)
    elif args.config:
        run = train(args.config, **dict(parse_override(o) for o in args.overrides))
    else:
        raise ConfigError("give a CONFIG.yaml to train, or --resume RUN")
    for result in run.results.values():
        print("\n" + result.to_markdown())
    print(f"\nreport: {run.report}")


def _evaluate(args: argparse.Namespace) -> None:
    from seqrec.reporting import save_results
    from seqrec.training.allocator import keep_freed_memory

    keep_freed_memory()  # evaluation allocates the same large score blocks chunk after chunk

    if args.model is not None:
        results, users = _evaluate_baseline(args)
    elif args.run is not None:
        from seqrec.pipeline import evaluate, load_run

        if args.dataset is not None:
            raise ConfigError("--dataset goes with --model; a run evaluates on its own data")
        run = load_run(args.run)
        names = args.protocol or list(run.config.evaluation.protocols)
        results = {name: evaluate(run, protocol=name) for name in names}
        users = run.prepared().corpus.users
    else:
        raise ConfigError("give a RUN folder, or --model pop --dataset NAME|PATH")
    for result in results.values():
        print("\n" + result.to_markdown())
    if args.output:
        save_results(Path(args.output), results, users)
        print(f"\nmetrics: {Path(args.output) / 'metrics.json'}")


def _evaluate_baseline(args: argparse.Namespace) -> tuple[dict, object]:
    from seqrec.pipeline import evaluate_baseline

    if args.run is not None:
        raise ConfigError("give either a RUN folder or --model, not both")
    if args.dataset is None:
        raise ConfigError("--model needs --dataset NAME|PATH")
    return evaluate_baseline(args.model, args.dataset, args.protocol or ["full"])


def _recommend(args: argparse.Namespace) -> None:
    from seqrec.pipeline import load_run, recommend

    run = load_run(args.run)
    top = recommend(run, args.history, k=args.k, exclude_history=not args.include_history)
    for rank, (item, score) in enumerate(top, start=1):
        print(f"{rank}\t{item}\t{score:.4f}")


# ---------------------------------------------------------------- parser


def _data_parser(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="fetch named data sets, show statistics")
    sub = data.add_subparsers(dest="data_command", required=True, metavar="{fetch,stats}")
    fetch = sub.add_parser("fetch", help="download (or install from --source) a named data set")
    fetch.add_argument("name", help="e.g. ml-100k, beauty")
    fetch.add_argument("--source", help="a local copy to install from instead of the network")
    fetch.set_defaults(func=_data_fetch)
    stats = sub.add_parser(
        "stats", help="users, items, interactions, sequence lengths, feature fields"
    )
    stats.add_argument("dataset", metavar="NAME|PATH")
    stats.add_argument("--format", choices=["atomic", "csv", "tsv", "parquet", "txt"])
    stats.set_defaults(func=_data_stats)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seqrec", description="Sequential recommendation: data, train, evaluate, recommend."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _data_parser(commands)

    train = commands.add_parser("train", help="train a model from a YAML config")
    train.add_argument("config", nargs="?", metavar="CONFIG.yaml")
    train.add_argument("overrides", nargs="*", metavar="a.b=c", help="e.g. training.lr=0.001")
    train.add_argument("--resume", metavar="RUN", help="continue an interrupted run")
    train.set_defaults(func=_train)

    evaluate = commands.add_parser("evaluate", help="test metrics with 95%% confidence intervals")
    evaluate.add_argument("run", nargs="?", metavar="RUN", help="a run folder")
    evaluate.add_argument(
        "--protocol", nargs="+", help="full, full-keep-history, uniformN, popularN"
    )
    evaluate.add_argument("--model", choices=["pop"], help="evaluate a baseline without a run")
    evaluate.add_argument("--dataset", metavar="NAME|PATH", help="data for --model")
    evaluate.add_argument("--output", metavar="DIR", help="write metrics.json and per-user values")
    evaluate.set_defaults(func=_evaluate)

    rec = commands.add_parser("recommend", help="top-k items after a history of raw item ids")
    rec.add_argument("run", metavar="RUN")
    rec.add_argument("--history", nargs="+", required=True, metavar="ITEM")
    rec.add_argument("-k", type=int, default=10)
    rec.add_argument("--include-history", action="store_true", help="allow items already seen")
    rec.set_defaults(func=_recommend)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "data":
        _quiet()
    from seqrec.data.datasets import FetchError
    from seqrec.data.errors import DataError

    try:
        args.func(args)
    except (ConfigError, DataError, FetchError, FileNotFoundError, FileExistsError) as error:
        print(f"seqrec: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (KeyError, ValueError) as error:  # unknown ids, protocols, metrics, data set names
        message = error.args[0] if error.args else repr(error)
        print(f"seqrec: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
