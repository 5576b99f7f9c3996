"""The ``seqrec`` command: data, train, evaluate, recommend, export, serve.

Bad input (a config key, a data file, a run or model folder, an unknown id, a bad flag) prints
one line, ``seqrec: error: <what and where>``, no traceback, and exits with status 2. That is
every error of ``seqrec.errors`` (and a data set that cannot be fetched, or a file the operating
system will not give us); any other exception is a bug and keeps its traceback. Heavy imports
(torch, Lightning) happen inside the commands, so ``seqrec --help`` is instant, and
``recommend``, ``export``, ``serve`` and ``data`` never import Lightning or matplotlib
(``NO_LIGHTNING``).
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from seqrec.errors import ConfigError, FetchError, SeqrecError

EXIT_BAD_INPUT = 2
FORMATS = ["atomic", "csv", "tsv", "parquet", "txt"]


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors on one line, like every other error of the command."""

    def error(self, message: str) -> NoReturn:
        print(f"seqrec: error: {self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


NO_LIGHTNING = ("data", "recommend", "export", "serve")


def _quiet() -> None:
    """Lightning's banner lines and a third-party deprecation notice say nothing to users.

    Lightning sets its logger's level when first imported, so it is imported here first.
    """
    import lightning.pytorch  # noqa: F401

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")


# ---------------------------------------------------------------- data


def _data_config(args: argparse.Namespace):
    """The ``data`` section a data-path command describes with --format and the column flags."""
    from seqrec.config import Columns, DataConfig

    columns = Columns(
        user=args.user_col, item=args.item_col, timestamp=args.time_col, rating=args.rating_col
    )
    return DataConfig(
        dataset=args.dataset, format=args.format, columns=columns, duplicates=args.duplicates
    )


def _data_fetch(args: argparse.Namespace) -> None:
    from seqrec.data.datasets import available, fetch

    if args.name not in available():
        raise ConfigError(
            f"unknown data set {args.name!r}; known data sets: {', '.join(available())}"
        )
    if args.source is not None and not Path(args.source).expanduser().exists():
        raise ConfigError(f"--source: no such file or folder: {args.source}")
    print(fetch(args.name, source=args.source))


def _data_stats(args: argparse.Namespace) -> None:
    from seqrec.data.corpus import build_corpus
    from seqrec.data.stats import corpus_stats, format_feature_stats, format_stats
    from seqrec.training.prepare import load_features, read_frame

    data = _data_config(args)
    frame = read_frame(data)
    corpus = build_corpus(frame, duplicates=data.duplicates)
    print(format_stats(corpus_stats(corpus), title=args.dataset))
    print("\n".join(corpus.load_report()))
    for which, vocabulary in (("item", corpus.items), ("user", corpus.users)):
        table = load_features(data, which, frame, vocabulary)
        if table is not None:
            print("\n" + format_feature_stats(table, which))


def _data_synth(args: argparse.Namespace) -> None:
    from seqrec.data.synth import SynthSpec, write_synthetic

    spec = SynthSpec(
        users=args.users, items=args.items, interactions_per_user=args.interactions_per_user,
        min_length=args.min_length, alpha=args.alpha, drift=args.drift, switch=args.switch,
        clusters=min(100, args.items) if args.clusters is None else args.clusters,
        seed=args.seed,
    )  # fmt: skip
    written = write_synthetic(spec, args.output, chunk_users=args.chunk_users)
    parts = "" if args.output.endswith(".parquet") else f"{len(written['files'])} part files in "
    print(f"{written['rows']:,} interactions of {spec.users:,} users -> {parts}{args.output}")


# ---------------------------------------------------------------- train / evaluate / recommend


def _train(args: argparse.Namespace) -> None:
    from seqrec.config import parse_override
    from seqrec.pipeline import resume, train
    from seqrec.training.allocator import keep_freed_memory
    from seqrec.training.distributed import writes_run_folder

    keep_freed_memory()  # steadier and faster CPU training steps, see allocator.py

    if args.resume:
        if args.config or args.overrides:
            raise ConfigError("--resume RUN continues a run with its saved config; give no CONFIG")
        run = resume(args.resume)
    elif args.config:
        run = train(args.config, **dict(parse_override(o) for o in args.overrides))
    else:
        raise ConfigError("give a CONFIG.yaml to train, or --resume RUN")
    if not writes_run_folder():  # one process of several: rank 0 prints
        return
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

        given = [
            f
            for f in ("dataset", "format", "user_col", "item_col", "time_col", "rating_col")
            if getattr(args, f)
        ]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise ConfigError(f"{flag} goes with --model; a run evaluates on its own data")
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
    return evaluate_baseline(args.model, _data_config(args), args.protocol or ["full"])


def _compare(args: argparse.Namespace) -> None:
    from seqrec.comparison import compare_runs, format_comparison

    rows = compare_runs(args.run_a, args.run_b, args.metric, args.protocol)
    print(format_comparison(args.run_a, args.run_b, rows))


def _recommend(args: argparse.Namespace) -> None:
    """Through the serving path, which imports neither Lightning nor the training code."""
    from seqrec.serving.backends import load_recommender

    recommender = load_recommender(args.run, args.backend)
    unknown = "drop" if args.drop_unknown else "reject"
    answer = recommender.recommend(
        args.history, args.k, exclude_seen=not args.include_history, unknown=unknown
    )
    if answer.unknown:
        print(f"seqrec: dropped unknown item ids: {', '.join(answer.unknown)}", file=sys.stderr)
    for rank, (item, score) in enumerate(answer.items, start=1):
        print(f"{rank}\t{item}\t{score:.4f}")


def _export(args: argparse.Namespace) -> None:
    from seqrec.serving.export import export_run

    print(export_run(args.run, args.out_dir, onnx=args.onnx))


def _serve(args: argparse.Namespace) -> None:
    from seqrec.serving.app import ServeSettings, serve

    settings = ServeSettings(
        model_dir=args.model_dir, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
        max_body_bytes=args.max_body_bytes, threads=args.threads, backend=args.backend,
    )  # fmt: skip
    serve(settings, host=args.host, port=args.port, workers=args.workers)


def _serving_parsers(commands: argparse._SubParsersAction) -> None:
    rec = commands.add_parser("recommend", help="top-k items after a history of raw item ids")
    rec.add_argument("run", metavar="RUN|MODEL_DIR", help="a run folder or an exported model")
    rec.add_argument("--history", nargs="+", required=True, metavar="ITEM")
    rec.add_argument("-k", type=int, default=10)
    rec.add_argument("--include-history", action="store_true", help="allow items already seen")
    rec.add_argument(
        "--drop-unknown", action="store_true", help="ignore unknown ids instead of failing"
    )
    rec.add_argument(
        "--backend", choices=["auto", "torch", "onnx"], default="auto",
        help="auto: model.onnx with onnxruntime when the exported folder has it, else PyTorch",
    )  # fmt: skip
    rec.set_defaults(func=_recommend)

    export = commands.add_parser(
        "export", help="write a self-contained, checksummed model folder for serving"
    )
    export.add_argument("run", metavar="RUN")
    export.add_argument("out_dir", metavar="OUT_DIR")
    export.add_argument("--onnx", action="store_true", help="also write model.onnx (scoring)")
    export.set_defaults(func=_export)

    serve = commands.add_parser("serve", help="HTTP service for an exported model folder")
    serve.add_argument("model_dir", metavar="MODEL_DIR")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="processes, one model each")
    serve.add_argument("--threads", type=int, default=1, help="intra-op threads per worker")
    serve.add_argument(
        "--backend", choices=["auto", "torch", "onnx"], default="auto",
        help="auto: model.onnx with onnxruntime when the folder has it, else PyTorch",
    )  # fmt: skip
    serve.add_argument(
        "--max-batch", type=int, default=32, help="micro-batch up to N concurrent requests (1: off)"
    )
    serve.add_argument(
        "--max-wait-ms", type=float, default=0.0, help="how long a micro-batch may wait to fill"
    )
    serve.add_argument("--max-body-bytes", type=int, default=1 << 20)
    serve.set_defaults(func=_serve)


# ---------------------------------------------------------------- benchmark / tune


def _benchmark(args: argparse.Namespace) -> None:
    from seqrec.benchmark import load_suite, run_suite
    from seqrec.training.allocator import keep_freed_memory

    keep_freed_memory()
    suite = load_suite(args.suite)
    results = run_suite(
        suite, quick=args.quick, models=args.models, output=args.output, jobs=args.jobs
    )
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
    bench.add_argument(
        "--jobs", type=int, default=1, metavar="N",
        help="train N models at once, one process each, the cores shared out (default 1)",
    )  # fmt: skip
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


def _data_flags(parser: argparse.ArgumentParser) -> None:
    """--format and the column flags, wherever a data path is accepted."""
    parser.add_argument(
        "--format", choices=FORMATS, help="default: from the file suffix (.inter .csv .tsv ...)"
    )
    parser.add_argument("--user-col", metavar="NAME", help="user id column (default user_id)")
    parser.add_argument("--item-col", metavar="NAME", help="item id column (default item_id)")
    parser.add_argument(
        "--time-col", metavar="NAME", help="time column (default timestamp; none: row order)"
    )
    parser.add_argument("--rating-col", metavar="NAME", help="rating column (default rating)")
    parser.add_argument(
        "--duplicates", choices=["keep", "drop", "error"], default="keep",
        help="rows identical to an earlier row (always counted)",
    )  # fmt: skip


def _data_parser(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="fetch named data sets, show statistics, synthesise")
    sub = data.add_subparsers(dest="data_command", required=True, metavar="{fetch,stats,synth}")
    fetch = sub.add_parser("fetch", help="download (or install from --source) a named data set")
    fetch.add_argument("name", help="e.g. ml-100k, beauty")
    fetch.add_argument("--source", help="a local copy to install from instead of the network")
    fetch.set_defaults(func=_data_fetch)
    stats = sub.add_parser(
        "stats", help="users, items, interactions, sequence lengths, feature fields"
    )
    stats.add_argument("dataset", metavar="NAME|PATH")
    _data_flags(stats)
    stats.set_defaults(func=_data_stats)
    _synth_parser(sub)


def _synth_parser(sub: argparse._SubParsersAction) -> None:
    synth = sub.add_parser(
        "synth", help="synthetic Parquet log: power-law items, users with drifting interests"
    )
    synth.add_argument("--users", type=int, required=True)
    synth.add_argument("--items", type=int, required=True)
    synth.add_argument("--interactions-per-user", type=float, default=20.0, help="mean length")
    synth.add_argument("--min-length", type=int, default=3, help="shortest sequence")
    synth.add_argument("--alpha", type=float, default=1.0, help="Zipf exponent of popularity")
    synth.add_argument(
        "--drift", type=float, default=0.0,
        help="share of next items drawn from the user's current interest (0: none)",
    )  # fmt: skip
    synth.add_argument(
        "--switch", type=float, default=0.05, help="chance the interest moves after an item"
    )
    synth.add_argument("--clusters", type=int, help="interests (item clusters); default 100")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--chunk-users", type=int, default=100_000, help="users per row group/part")
    synth.add_argument(
        "--output", required=True, metavar="PATH",
        help="a .parquet file, or a folder for part files",
    )  # fmt: skip
    synth.set_defaults(func=_data_synth)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="seqrec", description="Sequential recommendation: data, train, evaluate, recommend."
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
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
    _data_flags(evaluate)
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

    _serving_parsers(commands)
    _benchmark_parsers(commands)
    return parser


def _one_line(error: BaseException) -> str:
    """The message on one line (some third-party messages run to several)."""
    return " ".join(str(error).split()) or type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command not in NO_LIGHTNING:
        _quiet()
    try:
        args.func(args)
    except (SeqrecError, FetchError) as error:
        print(f"seqrec: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:  # a path the system refuses (missing, permissions, disk full)
        where = f"{error.filename}: " if error.filename else ""
        print(f"seqrec: error: {where}{error.strerror or _one_line(error)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
