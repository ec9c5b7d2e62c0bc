"""The `textfit` command: check, train, distill, tune, evaluate, export, predict, serve, report.

    textfit check --dataset ../shared/data/imdb --eval-split test
    textfit train --dataset examples/data/imdb_sample --output-dir outputs/imdb
    textfit distill outputs/imdb --layers 2 --output-dir outputs/imdb-student
    textfit tune --recipe sst2-distilbert --trials 12 --max-train-samples 4000 --output-dir outputs/sst2-tuned
    textfit evaluate outputs/imdb --dataset ../shared/data/imdb --split test --max-eval-samples 1000
    textfit export outputs/imdb --format onnx --quantize int8
    textfit predict outputs/imdb "A wonderful film." --input reviews.csv --output preds.jsonl
    textfit serve outputs/imdb --port 8000
    textfit report outputs/imdb --html
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

from textfit.config import DATA, TrainConfig
from textfit.errors import ConfigError, TextfitError
from textfit.recipe import recipe_path

if TYPE_CHECKING:
    from textfit.predict import Classifier

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no tokenizer threads fighting the compute threads


def _add_config_flags(parser: argparse.ArgumentParser, groups: tuple[str, ...] | None = None,
                      also: tuple[str, ...] = (), without: tuple[str, ...] = ()) -> None:
    """One flag per TrainConfig field (of `groups`, and the fields named in `also`, less those in `without`), so
    recipe keys and flags never drift apart; each flag's help is the field's reason for its default."""
    chosen = [f for f in fields(TrainConfig) if (groups is None or f.metadata["group"] in groups or f.name in also)
              and f.name not in without]
    for group in dict.fromkeys(f.metadata["group"] for f in chosen):
        section = parser.add_argument_group(f"settings: {group} (also recipe keys)")
        for f in (f for f in chosen if f.metadata["group"] == group):
            flag = "--" + f.name.replace("_", "-")
            kind = str(f.type)
            why = f"{f.metadata['help']} (default: {f.default})".replace("%", "%%")
            if kind == "bool":
                section.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=why)
                continue
            convert = int if "int" in kind else float if "float" in kind else str
            section.add_argument(flag, type=convert, default=None, metavar=f.name.upper(), help=why)


# one name per concept; the old names keep working until textfit 0.3, with a note
RENAMED = {"--split": "--eval-split", "--max-samples": "--max-eval-samples"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="textfit",
                                     description="Fine-tune transformer encoders into text classifiers.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_train_flags, _distill_flags, _tune_flags, _check_flags, _recipe_flags, _evaluate_flags, _predict_flags,
                _export_flags, _serve_flags, _report_flags):
        add(sub)
    parser.commands = dict(sub.choices)  # for suggestions on a misspelt flag
    return parser


def _train_flags(sub: argparse._SubParsersAction) -> None:
    """textfit train: every setting."""
    train = sub.add_parser("train", help="fine-tune a model; flags override the --config recipe")
    train.add_argument("--config", help="recipe YAML (keys are these flags with underscores)")
    train.add_argument("--recipe", help="a shipped recipe by name (textfit recipe list), instead of --config")
    _add_config_flags(train)


def _distill_flags(sub: argparse._SubParsersAction) -> None:
    """textfit distill: a teacher folder; every setting, the teacher's recipe by default."""
    distill = sub.add_parser("distill", help="train a smaller student from a fine-tuned teacher's scores, then "
                                             "compare the two: accuracy, agreement, texts/s per backend, size")
    distill.add_argument("teacher_dir", help="the fine-tuned teacher (a textfit output folder)")
    distill.add_argument("--speed-texts", type=int,
                         help="evaluation texts to time each backend on, for both models; 0 skips timing "
                              "(default: 256)")
    _add_config_flags(distill, without=("teacher",))


def _tune_flags(sub: argparse._SubParsersAction) -> None:
    """textfit tune: every setting (each trial trains), and how many trials."""
    tune = sub.add_parser("tune", help="search hyperparameters with Optuna; flags override the recipe")
    tune.add_argument("--config", help="recipe YAML; its search_space: mapping says what to search")
    tune.add_argument("--recipe", help="a shipped recipe by name, instead of --config")
    tune.add_argument("--trials", type=int, help="trials to finish (an interrupted search continues); with "
                      "--time-budget, at most this many: no trial starts that would not fit")
    _add_config_flags(tune)


def _check_flags(sub: argparse._SubParsersAction) -> None:
    """textfit check: the data settings only."""
    check = sub.add_parser("check", help="look at a dataset before training: labels, duplicates, leaks, truncation")
    check.add_argument("--config", help="recipe YAML, as for train (only its data settings matter here)")
    check.add_argument("--recipe", help="a shipped recipe by name, as for train")
    _add_config_flags(check, groups=(DATA,), also=("model", "max_length"))  # the tokenizer says what truncates


def _recipe_flags(sub: argparse._SubParsersAction) -> None:
    """textfit recipe list | show | from-card."""
    recipe = sub.add_parser("recipe", help="list shipped recipes, or read one out of a model card")
    recipe_sub = recipe.add_subparsers(dest="recipe_command", required=True)
    recipe_sub.add_parser("list", help="the shipped recipes and what they reproduce")
    show = recipe_sub.add_parser("show", help="print a shipped recipe")
    show.add_argument("name")
    from_card = recipe_sub.add_parser("from-card", help="the recipe that repeats a model card's training run")
    from_card.add_argument("card", help="a model card (README.md) in the Trainer's layout")
    from_card.add_argument("--output", help="write the recipe here instead of printing it")


def _evaluate_flags(sub: argparse._SubParsersAction) -> None:
    """textfit evaluate: a saved model on a labelled split."""
    evaluate = sub.add_parser("evaluate", help="evaluate a saved model on a split or file")
    evaluate.add_argument("model_dir")
    evaluate.add_argument("--dataset", required=True)
    evaluate.add_argument("--eval-split", "--split", dest="eval_split",
                          help="split name (default: test, else validation)")
    evaluate.add_argument("--text-column", default=None)
    evaluate.add_argument("--text-pair-column", default=None)
    evaluate.add_argument("--label-column", default=None)
    evaluate.add_argument("--max-eval-samples", type=int, help="a seeded random subset of the split")
    evaluate.add_argument("--one-threshold", action="store_true",
                          help="multi-label: the one global threshold for every label, not each label's own")
    evaluate.add_argument("--batch-size", type=int, default=32)
    evaluate.add_argument("--windows", action=argparse.BooleanOptionalAction, default=None,
                          help="score long texts whole, as `predict --windows` reads them: does reading past "
                               "max_length pay on this data? (default: as the model was trained, its windows "
                               "setting)")
    _add_backend_flags(evaluate)
    evaluate.set_defaults(backend="torch", precision="fp32")  # the model as trained, unless asked otherwise
    evaluate.add_argument("--against", metavar="OTHER_DIR",
                          help="another model folder for the same labels, scored on the very same examples: the "
                               "difference with its 95%% paired bootstrap interval says whether the first is better "
                               "beyond the luck of the evaluation set, and how often the two agree")
    evaluate.add_argument("--output", help="write the metrics as JSON here")


def _predict_flags(sub: argparse._SubParsersAction) -> None:
    """textfit predict: texts or a file."""
    predict = sub.add_parser("predict", help="predict labels for texts or a file")
    predict.add_argument("model_dir")
    predict.add_argument("texts", nargs="*", help="texts to classify")
    predict.add_argument("--input", help="CSV, TSV or JSON Lines file of texts")
    predict.add_argument("--text-column", default=None, help="(default: the model's, else 'text')")
    predict.add_argument("--output", help="predictions file (.jsonl or .csv); default: print")
    predict.add_argument("--batch-size", type=int, default=32)
    _add_backend_flags(predict)
    predict.add_argument("--no-progress", action="store_true", help="no progress bar")
    predict.add_argument("--windows", action=argparse.BooleanOptionalAction, default=None,
                         help="read long texts whole: overlapping windows of max_length tokens, probabilities "
                              "averaged (default: as the model was trained, its windows setting)")


def _export_flags(sub: argparse._SubParsersAction) -> None:
    """textfit export: ONNX and int8 graphs, checked against PyTorch."""
    export = sub.add_parser("export", help="write ONNX (and int8) graphs for fast CPU prediction")
    export.add_argument("model_dir")
    export.add_argument("--format", default="onnx", choices=("onnx",))
    export.add_argument("--quantize", choices=("int8",), help="also write a dynamically quantized int8 graph")
    export.add_argument("--dataset", help="data to compare the graphs on (default: the recipe's evaluation data)")
    export.add_argument("--eval-split", "--split", dest="eval_split",
                        help="its split (default: the recipe's eval_split, else test/validation)")
    export.add_argument("--max-eval-samples", "--max-samples", dest="max_eval_samples", type=int, default=1000,
                        help="evaluation texts to compare on (default: 1000)")
    export.add_argument("--max-accuracy-drop", type=float, default=1.0,
                        help="accuracy points int8 may lose against PyTorch fp32 (default: 1.0)")
    export.add_argument("--force", action="store_true", help="write the int8 graph even past that drop")
    export.add_argument("--fuse", action="store_true",
                        help="BERT-type models: fuse attention, GELU and LayerNorms into onnxruntime's own kernels "
                             "(measured 0.89-1.01x on an AMD EPYC: results/onnx_fusion.md; onnxruntime fuses the "
                             "plain graph itself at load)")


def _serve_flags(sub: argparse._SubParsersAction) -> None:
    """textfit serve: the HTTP service and its limits."""
    serve = sub.add_parser("serve", help="an HTTP service: POST /predict, GET /health, /metadata, a page at /")
    serve.add_argument("model_dir")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--batch-size", type=int, default=32)
    _add_backend_flags(serve)
    serve.add_argument("--max-texts", type=int, default=64, help="texts per request (default: 64)")
    serve.add_argument("--max-chars", type=int, default=20_000, help="characters per text (default: 20000)")
    serve.add_argument("--max-body-bytes", type=int, default=1_000_000, help="request body size (default: 1 MB)")
    serve.add_argument("--batch-window-ms", type=float, default=5.0,
                       help="how long the first request of a batch waits for others (default: 5 ms)")


def _report_flags(sub: argparse._SubParsersAction) -> None:
    """textfit report: a finished run again, or its card as one page."""
    report = sub.add_parser("report", help="what a finished run found, again; --html: the card as one HTML page")
    report.add_argument("model_dir")
    report.add_argument("--html", nargs="?", const="", default=None, metavar="FILE",
                        help="write the card and its pictures as one self-contained page (default: DIR/card.html)")


def _add_backend_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", default="auto", choices=("auto", "torch", "onnx", "int8"),
                        help="auto: PyTorch bf16 on a GPU or an AMX CPU, else the folder's int8 graph, else bf16 "
                             "where native, else the fp32 graph, else PyTorch fp32 (default: auto)")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                        help="for the PyTorch backend; auto = bf16 where native (default: auto)")


def quiet_transformers() -> None:
    """textfit prints its own summary; the per-load reports and weight-loading bars only add noise."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "predict" and not any(e.startswith("-") for e in extra):
        args.texts += extra  # texts after the options: `textfit predict DIR --backend int8 "some text"`
    elif extra:
        parser.commands[args.command].error(_unknown_flags(parser.commands[args.command], extra))
    for old, new in RENAMED.items():
        if any(a == old or a.startswith(old + "=") for a in argv):
            print(f"textfit {args.command}: note: {old} is now {new}; the old name works until textfit 0.3",
                  file=sys.stderr)
    quiet_transformers()
    try:
        commands = {"train": cmd_train, "distill": cmd_distill, "tune": cmd_tune, "check": cmd_check,
                    "evaluate": cmd_evaluate, "predict": cmd_predict, "recipe": cmd_recipe, "export": cmd_export,
                    "serve": cmd_serve, "report": cmd_report}
        return commands[args.command](args)
    except TextfitError as exc:
        print(f"textfit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hints = {"train": " (the last evaluation's checkpoint is kept: add --resume to continue)",
                 "tune": " (the study is kept in OUTPUT/study.db: run the same command again to continue)",
                 "predict": " (the predictions so far are kept: run the same command again to continue)"}
        hint = hints.get(args.command, "")
        print(f"textfit {args.command}: interrupted{hint}", file=sys.stderr)
        return 130


def run() -> None:
    """The console entry point. After the command, the interpreter's exit would run one last full garbage
    collection over every object that torch and transformers created at import: about 1 s on this 2-core CPU, on
    every command, spent freeing memory the exit frees anyway. Freezing them first skips it. Every output is
    written and closed by then; atexit handlers still run."""
    code = main()
    gc.freeze()
    raise SystemExit(code)


def _unknown_flags(command: argparse.ArgumentParser, extra: list[str]) -> str:
    """'unrecognized arguments', with the flag each misspelt one resembles."""
    import difflib

    known = [o for action in command._actions for o in action.option_strings]
    parts = []
    for arg in extra:
        flag = arg.split("=", 1)[0]
        close = difflib.get_close_matches(flag, known, n=1, cutoff=0.6) if flag.startswith("--") else []
        parts.append(f"{arg} (did you mean {close[0]}?)" if close else arg)
    return f"unrecognized arguments: {' '.join(parts)}"


def _config_of(args: argparse.Namespace) -> TrainConfig:
    overrides = {f.name: getattr(args, f.name, None) for f in fields(TrainConfig)}
    if args.recipe and args.config:
        raise ConfigError("give --recipe NAME or --config FILE, not both")
    source = recipe_path(args.recipe) if args.recipe else args.config
    return TrainConfig.from_sources(source, **overrides)


def cmd_train(args: argparse.Namespace) -> int:
    config = _config_of(args)
    early = _early_baseline(config)  # before PyTorch is imported: the seconds that takes are its idle core
    from textfit.training import train

    train(config, fixed=_flags_given(args), started=_command_started(), early_baseline=early)
    return 0


def _early_baseline(config: TrainConfig):
    """The TF-IDF baseline's job, forked now, while this process has not imported PyTorch yet: the child reads
    the data itself and fits the baseline on the core that importing PyTorch and loading the model leave idle,
    instead of sharing the cores with the training loop. None where the run fits none in the background."""
    from textfit.baseline import BaselineJob

    first_process = os.environ.get("RANK", "0") == "0"  # set by torchrun and `accelerate launch`: no Accelerator yet
    return BaselineJob.from_config(config) if BaselineJob.wanted(config, first_process) else None


def _flags_given(args: argparse.Namespace) -> set[str]:
    """The settings given as flags: a time budget's plan keeps them as they are (a recipe's values it may change)."""
    return {f.name for f in fields(TrainConfig) if getattr(args, f.name, None) is not None}


def _command_started() -> float:
    """When the user's wait began: this process's start (Python's own start-up and imports count too)."""
    import psutil

    return psutil.Process().create_time()


def cmd_distill(args: argparse.Namespace) -> int:
    from textfit.distill import SPEED_TEXTS, comparison_lines, distill

    settings = {f.name: getattr(args, f.name, None) for f in fields(TrainConfig) if f.name != "teacher"}
    speed_texts = SPEED_TEXTS if args.speed_texts is None else args.speed_texts
    _, report, sides = distill(args.teacher_dir, speed_texts=speed_texts, **settings)
    print("\n".join(comparison_lines(report, sides)))
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from textfit.tune import search_space, tune

    config = _config_of(args)
    tune(config, args.trials, search_space(recipe_path(args.recipe) if args.recipe else args.config),
         started=_command_started())
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from transformers import AutoTokenizer

    from textfit.data.check import check_data
    from textfit.models import resolve_model
    from textfit.training import load_data

    cfg = _config_of(args)
    data = load_data(cfg)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(cfg.model).path)
    report = check_data(data.train, data.eval, data.label_names, tokenizer=tokenizer, max_length=cfg.max_length,
                        seed=cfg.seed, task=data.task)
    print(f"{data.dataset_name}: train split {cfg.train_split!r}, evaluation {data.eval_split}")
    for line in report.lines:
        print(f"  {line}")
    for warning in report.warnings:
        print(f"warning: {warning}")
    if not report.warnings:
        print("no warnings")
    return 0


def cmd_recipe(args: argparse.Namespace) -> int:
    from textfit.io import atomic_write_text
    from textfit.recipe import describe, read_card, shipped_recipes

    if args.recipe_command == "list":
        for name, path in shipped_recipes().items():
            print(f"{name:<28} {describe(path)}")
        return 0
    if args.recipe_command == "show":
        print(recipe_path(args.name).read_text(encoding="utf-8"), end="")
        return 0
    card = Path(args.card)
    if not card.is_file():
        raise ConfigError(f"{card}: no such model card")
    reading = read_card(card.read_text(encoding="utf-8"))
    text = reading.to_yaml()
    if args.output:
        atomic_write_text(args.output, text)
        print(f"wrote {args.output}")
    else:
        print(text, end="")
    if reading.missing:
        print(f"not found in {card}: {', '.join(reading.missing)}", file=sys.stderr)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from textfit.evaluate import evaluate_folder, metric_lines
    from textfit.io import atomic_write_json
    from textfit.predict import load

    clf = load(args.model_dir, batch_size=args.batch_size, backend=args.backend, precision=args.precision,
               per_label_thresholds=not args.one_threshold)
    if args.against:
        return _evaluate_against(args, clf)
    metrics, split, count = evaluate_folder(clf, args.dataset, args.eval_split, text_column=args.text_column,
                                            label_column=args.label_column, text_pair_column=args.text_pair_column,
                                            max_samples=args.max_eval_samples, windows=args.windows)
    windows = clf.windows if args.windows is None else args.windows
    read = ", long texts read whole in windows" if windows else ""
    print(f"{args.model_dir} on {args.dataset} [{split}], {count} examples ({clf.backend.name}{read})")
    print("\n".join(metric_lines(metrics)))
    if args.output:
        atomic_write_json(args.output, {"dataset": args.dataset, "split": split, "windows": windows, **metrics})
    return 0


def _evaluate_against(args: argparse.Namespace, clf: Classifier) -> int:
    """Both models on the same examples, each as it reads texts; then the paired difference in one sentence."""
    from textfit.evaluate import evaluate_against, metric_lines
    from textfit.io import atomic_write_json
    from textfit.predict import load

    other = load(args.against, batch_size=args.batch_size, backend=args.backend, precision=args.precision,
                 per_label_thresholds=not args.one_threshold)
    ours, theirs, comparison, split = evaluate_against(
        clf, other, args.dataset, args.eval_split, text_column=args.text_column, label_column=args.label_column,
        text_pair_column=args.text_pair_column, max_samples=args.max_eval_samples, windows=args.windows)
    print(f"on {args.dataset} [{split}], {comparison.examples} examples")
    windows = [model.windows if args.windows is None else args.windows for model in (clf, other)]
    for folder, model, metrics, whole in ((args.model_dir, clf, ours, windows[0]),
                                          (args.against, other, theirs, windows[1])):
        print(f"{folder} ({model.backend.name}{', long texts read whole in windows' if whole else ''})")
        print("\n".join(metric_lines(metrics)))
    print(comparison.sentence(args.model_dir, args.against))
    if args.output:
        atomic_write_json(args.output, {"dataset": args.dataset, "split": split, "windows": windows[0], **ours,
                                        "against": {"model_dir": args.against, "windows": windows[1], **theirs},
                                        "comparison": comparison.to_json()})
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from textfit.predict import load
    from textfit.predict_file import predict_file

    if not args.texts and not args.input:
        raise ConfigError("give texts to classify or --input FILE")
    clf = load(args.model_dir, batch_size=args.batch_size, backend=args.backend, precision=args.precision)
    for text, pred in zip(args.texts, clf.predict(args.texts, windows=args.windows) if args.texts else [],
                          strict=True):
        scores = ", ".join(f"{k} {v:.3f}" for k, v in pred["scores"].items())
        answer = (f"{pred['value']:.4f}" if "value" in pred else
                  ", ".join(pred["labels"]) or "(no label)" if "labels" in pred else pred["label"])
        print(f"{answer}\t({scores})\t{text}")
    if not args.input:
        return 0
    column = args.text_column or clf.folder.columns.text
    if not args.output:
        from textfit.predict_file import _texts

        for pred in clf.predict_stream(_texts(Path(args.input), column, skip=0), windows=args.windows):
            print(json.dumps(pred, ensure_ascii=False))
        return 0
    rows = predict_file(clf, args.input, args.output, column, progress=not args.no_progress, windows=args.windows)
    print(f"wrote {rows:,} predictions to {args.output} ({clf.backend.name})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from textfit.export import AccuracyDropError, export_onnx

    def table(rows: list) -> None:
        print(f"{'backend':<18} {'accuracy':>8} {'same labels':>11} {'max prob diff':>13}")
        for row in rows:
            print(f"{row.backend:<18} {row.accuracy:>8.4f} {row.same_labels:>11.2%} {row.max_prob_diff:>13.2e}")

    try:
        rows = export_onnx(args.model_dir, quantize=args.quantize, dataset=args.dataset, split=args.eval_split,
                           max_samples=args.max_eval_samples, max_accuracy_drop=args.max_accuracy_drop / 100,
                           force=args.force, fuse=args.fuse)
    except AccuracyDropError as exc:
        table(exc.rows)
        raise TextfitError(str(exc)) from None
    table(rows)
    written = ["model.onnx"] + (["model.int8.onnx"] if args.quantize else [])
    print(f"wrote {', '.join(written)} and export.json to {args.model_dir}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from textfit.card.report import card_html, report_lines
    from textfit.io import atomic_write_text

    folder = Path(args.model_dir)
    print("\n".join(report_lines(folder)))
    if args.html is not None:
        target = Path(args.html) if args.html else folder / "card.html"
        atomic_write_text(target, card_html(folder))
        print(f"wrote {target}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from textfit.predict import load
    from textfit.serve import Limits, create_app

    clf = load(args.model_dir, batch_size=args.batch_size, backend=args.backend, precision=args.precision)
    limits = Limits(args.max_texts, args.max_chars, args.max_body_bytes)
    app = create_app(clf, limits, batch_window=args.batch_window_ms / 1000)
    print(f"serving {args.model_dir} ({clf.backend.name}) on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
