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
    from seqrec.data.stats import corpus_stats, format_stats
    from seqrec.training.prepare import read_frame

    frame = read_frame(DataConfig(dataset=args.dataset, format=args.format))
    print(format_stats(corpus_stats(build_corpus(frame)), title=args.dataset))


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
    """The baseline on a run's own data, split and evaluation settings, or on --dataset."""
    from seqrec.config import load_config
    from seqrec.pipeline import evaluate_baseline

    if args.run is not None:
        if args.dataset is not None:
            raise ConfigError("give either a RUN folder or --dataset for --model, not both")
        config_path = Path(args.run) / "config.yaml"
        if not config_path.is_file():
            raise FileNotFoundError(f"{args.run} is not a run folder: config.yaml is missing")
        return evaluate_baseline(args.model, load_config(config_path), args.protocol)
    if args.dataset is None:
        raise ConfigError("--model needs --dataset NAME|PATH, or a RUN folder to take them from")
    return evaluate_baseline(args.model, args.dataset, args.protocol or ["full"])


def _compare(args: argparse.Namespace) -> None:
    from seqrec.comparison import compare_runs, format_comparison

    rows = compare_runs(args.run_a, args.run_b, args.metric, args.protocol)
    print(format_comparison(args.run_a, args.run_b, rows))


def _recommend(args: argparse.Namespace) -> None:
    from seqrec.pipeline import load_run, recommend

    run = load_run(args.run)
    top = recommend(run, args.history, k=args.k, exclude_history=not args.include_history)
    for rank, (item, score) in enumerate(top, start=1):
        print(f"{rank}\t{item}\t{score:.4f}")


# ---------------------------------------------------------------- benchmark / tune


def _benchmark(args: argparse.Namespace) -> None:
    from seqrec.benchmark import load_suite, run_suite
    from seqrec.training.allocator import keep_freed_memory

    keep_freed_memory()
    suite = load_suite(args.suite)
    results = run_suite(suite, quick=args.quick, models=args.models, output=args.output)
    print("\n" + results.results_md.read_text(encoding="utf-8"))
    print(f"results: {results.results_md}")


def _tune(args: argparse.Namespace) -> None:
    from seqrec.config import parse_override
    from seqrec.training.allocator import keep_freed_memory
    from seqrec.tune import tune

    keep_freed_memory()
    result = tune(
        args.config, args.trials, args.budget_minutes, space=args.space, output=args.output,
        sampler_seed=args.seed, confirm_seeds=args.confirm_seeds,
        prune_warmup_epochs=args.prune_warmup_epochs,
        overrides=dict(parse_override(o) for o in args.overrides),
    )  # fmt: skip
    print("\n" + result.trials_md.read_text(encoding="utf-8"))
    preset = "-" if result.preset_value is None else f"{result.preset_value:.4f}"
    print(f"best validation value {result.best_value:.4f} (preset's trial: {preset})")
    if result.confirmation is not None:
        print("\n" + result.confirmation.path.read_text(encoding="utf-8"))
    print(f"study: {result.storage}\nbest config: {result.best_config}")


def _benchmark_parsers(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser(
        "benchmark", help="train every model of a suite with several seeds; tables and plots"
    )
    bench.add_argument("suite", metavar="SUITE", help="a name in benchmarks/suites, or a path")
    bench.add_argument("--quick", action="store_true", help="the suite's quick variant")
    bench.add_argument("--models", nargs="+", metavar="NAME", help="train only these entries")
    bench.add_argument("--output", metavar="DIR", help="default benchmarks/results/SUITE[-quick]")
    bench.set_defaults(func=_benchmark)

    tune = commands.add_parser("tune", help="Optuna search around a preset (seqrec[tune])")
    tune.add_argument("config", metavar="CONFIG.yaml")
    tune.add_argument("overrides", nargs="*", metavar="a.b=c", help="change the preset first")
    tune.add_argument("--trials", type=int, required=True, help="finished trials of the study")
    tune.add_argument("--budget-minutes", type=float, required=True,
                      help="start no trial after this")  # fmt: skip
    tune.add_argument("--space", metavar="SPACE.yaml", help="default configs/spaces/MODEL.yaml")
    tune.add_argument("--output", metavar="DIR", help="default runs/tune-CONFIG (resumes)")
    tune.add_argument("--seed", type=int, default=0, help="the TPE sampler's seed")
    tune.add_argument("--confirm-seeds", type=int, nargs="+", metavar="SEED",
                      help="retrain preset and best with these seeds")  # fmt: skip
    tune.add_argument("--prune-warmup-epochs", type=int, default=4,
                      help="no pruning before this epoch")  # fmt: skip
    tune.set_defaults(func=_tune)


# ---------------------------------------------------------------- parser


def _data_parser(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="fetch named data sets, show statistics")
    sub = data.add_subparsers(dest="data_command", required=True, metavar="{fetch,stats}")
    fetch = sub.add_parser("fetch", help="download (or install from --source) a named data set")
    fetch.add_argument("name", help="e.g. ml-100k, beauty")
    fetch.add_argument("--source", help="a local copy to install from instead of the network")
    fetch.set_defaults(func=_data_fetch)
    stats = sub.add_parser("stats", help="users, items, interactions, sequence lengths")
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
    evaluate.add_argument(
        "--model", choices=["pop"], help="a baseline, on RUN's data and split or on --dataset"
    )
    evaluate.add_argument("--dataset", metavar="NAME|PATH", help="data for --model without RUN")
    evaluate.add_argument("--output", metavar="DIR", help="write metrics.json and per-user values")
    evaluate.set_defaults(func=_evaluate)

    compare = commands.add_parser(
        "compare", help="paired difference of two runs' test metrics, with CI and p-value"
    )
    compare.add_argument("run_a", metavar="RUN_A")
    compare.add_argument("run_b", metavar="RUN_B")
    compare.add_argument("--metric", nargs="+", help="e.g. NDCG@10 (default: every shared one)")
    compare.add_argument("--protocol", nargs="+", help="default: every protocol of both runs")
    compare.set_defaults(func=_compare)

    rec = commands.add_parser("recommend", help="top-k items after a history of raw item ids")
    rec.add_argument("run", metavar="RUN")
    rec.add_argument("--history", nargs="+", required=True, metavar="ITEM")
    rec.add_argument("-k", type=int, default=10)
    rec.add_argument("--include-history", action="store_true", help="allow items already seen")
    rec.set_defaults(func=_recommend)
    _benchmark_parsers(commands)
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
