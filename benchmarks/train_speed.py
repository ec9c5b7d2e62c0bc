"""Training speed on this machine: the Hugging Face Trainer as tutorials run it, the Trainer at its best
CPU settings, and textfit, on the same model, data, hyperparameters and number of steps, in one run.

    make bench-train                                   # = python benchmarks/train_speed.py
    python benchmarks/train_speed.py --repeats 1 --train-samples 256   # a quick look

Each run is a fresh process (so peak memory is its own), runs are interleaved over the repetitions, and the
table reports medians. Writes benchmarks/results/train_speed.md with the machine's description.

(1) trainer-default: padding="max_length" (every batch 256 wide), fp32, random batches (the text-classification
    example's defaults).
(2) trainer-best: dynamic padding (DataCollatorWithPadding), train_sampling_strategy="group_by_length",
    bf16 where the CPU has it.
(3) textfit: its defaults (length-grouped batches padded to their longest, bf16 autocast where the CPU has it,
    eager attention while attention dropout is on).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IMDB = REPO.parent / "shared" / "data" / "imdb"
RESULTS = REPO / "benchmarks" / "results"
VARIANTS = ("trainer-default", "trainer-best", "textfit")

NOTES = """\
## What textfit does for speed, and what it left out

Kept (each on by default, each can be turned off):
- length-grouped batches padded to their longest (`--no-group-by-length` turns it off): groups of 50 batches sorted
  by length inside a seeded shuffle, then the batches shuffled, so the order stays random;
- batch widths rounded up to a multiple of 32 (`--pad-to-multiple-of 1` turns it off): with free widths the
  process's peak RSS grew to 4.45 GB over 128 steps (every new shape leaves differently sized buffers behind);
  with at most 8 widths up to 256 it stayed at 2.70 GB, at about the same speed (119 s vs 111 s, within the
  run-to-run noise), as oneDNN reuses its kernels for repeated shapes;
- bf16 autocast where the CPU has native bf16 (`--precision fp32` turns it off), fp32 master weights;
- fast dropout (`--no-fast-dropout`): dropout masks from 15-bit integers instead of `bernoulli_`, the attention
  probabilities masked in bf16 and the 1/(1-p) scale moved to the smaller attention output. In the profile of a
  bf16 step, `bernoulli_` alone was 30% of the time; fast dropout raised the loop's real tokens/s by about 25%
  (3,300 -> 4,200 on real IMDB batches). Same drop probability and scaling, another random stream;
- eager attention while training with attention dropout (PyTorch's CPU SDPA with dropout falls back to a slower
  unfused path: 1.27 s vs 1.06 s per 16x256 step), SDPA for evaluation;
- fused AdamW (`torch.optim.AdamW(fused=True)`): the optimizer step fell from ~90 ms to ~14 ms per step;
- tokenization once, cached in ~/.cache/textfit/tokens (`--no-tokenize-cache`): 25,000 IMDB reviews take ~15 s
  to tokenize on 2 cores, a cached rerun loads them in about a second;
- no data-loader worker processes (batches are built in the training process from pre-tokenized ids), and
  PyTorch's default of one thread per physical core; torchrun sets one thread per process.
Left out: torch.compile (measured slower here for MiniLM in ../shared/notes/cpu-baselines.md, 0.87-0.89x, after a
45-117 s compile); freezing the embedding matrix (changes what the model learns; not measured yet).
"""

# the same for every variant
MAX_LENGTH = 256  # the reference IMDB cards' budget on a CPU
BATCH = 16
LR = 5e-5
SEED = 42


def load_rows(split: str, n: int) -> list[dict]:
    rows = []
    with gzip.open(IMDB / f"{split}.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            rows.append(json.loads(line))
            if len(rows) == n:
                break
    return rows


def model_path() -> str:
    from textfit.models import resolve_model

    return resolve_model("minilm-l6").path


def real_token_stats(tokenizer, texts: list[str]) -> tuple[int, int]:
    """Real (unpadded) tokens and sum of squared lengths, for one epoch over `texts`."""
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]]
    return sum(lengths), sum(s * s for s in lengths)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------------------------- one run


def run_trainer(best: bool, train_rows: list[dict], eval_rows: list[dict], workdir: Path,
                eval_every: int | None = None, seed: int = SEED) -> dict:
    import numpy as np
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        default_data_collator,
    )

    from textfit.precision import cpu_has_fast_bf16

    path = model_path()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    padding = False if best else "max_length"

    def tokenize(batch):
        return tok(batch["text"], truncation=True, max_length=MAX_LENGTH, padding=padding)

    train_ds = Dataset.from_list([{"text": r["text"], "label": r["label"]} for r in train_rows])
    eval_ds = Dataset.from_list([{"text": r["text"], "label": r["label"]} for r in eval_rows])
    train_ds = train_ds.map(tokenize, batched=True, remove_columns=["text"])
    eval_ds = eval_ds.map(tokenize, batched=True, remove_columns=["text"])
    bf16 = best and cpu_has_fast_bf16()
    args = TrainingArguments(output_dir=str(workdir), per_device_train_batch_size=BATCH,
                             per_device_eval_batch_size=32, learning_rate=LR, num_train_epochs=1, seed=seed,
                             report_to="none", save_strategy="no", use_cpu=True, bf16=bf16,
                             eval_strategy="steps" if eval_every else "no", eval_steps=eval_every,
                             bf16_full_eval=False, disable_tqdm=True, logging_strategy="no",
                             train_sampling_strategy="group_by_length" if best else "random")
    collator = DataCollatorWithPadding(tok) if best else default_data_collator
    curve: list[tuple[int, float, float]] = []  # (step, seconds of training so far, accuracy)

    class TrainClock(TrainerCallback):
        """Training time without evaluation time, and the accuracy at each evaluation."""

        spent = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.spent += time.perf_counter() - self.started

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            curve.append((state.global_step, self.spent, metrics["eval_accuracy"]))

    def accuracy_of(prediction) -> dict:
        return {"accuracy": float((np.argmax(prediction.predictions, -1) == prediction.label_ids).mean())}

    clock = TrainClock()
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds, data_collator=collator,
                      compute_metrics=accuracy_of, callbacks=[clock])
    start = time.perf_counter()
    trainer.train()
    seconds = clock.spent if eval_every else time.perf_counter() - start
    logits = trainer.predict(eval_ds).predictions
    accuracy = float((np.argmax(logits, -1) == np.array(eval_ds["label"])).mean())
    return {"seconds": seconds, "accuracy": accuracy, "precision": "bf16" if bf16 else "fp32", "curve": curve}


def run_textfit(train_rows: list[dict], eval_rows: list[dict], workdir: Path, eval_every: int | None = None,
                seed: int = SEED) -> dict:
    from textfit.config import TrainConfig
    from textfit.train import FineTune

    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train_rows), ("test", eval_rows)):
        (data / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (data / "labels.json").write_text('["neg", "pos"]')
    run = FineTune(TrainConfig(dataset=str(data), eval_split="test", output_dir=str(workdir / "out"),
                               learning_rate=LR, train_batch_size=BATCH, eval_batch_size=32, epochs=1, seed=seed,
                               max_length=MAX_LENGTH, eval_strategy="steps" if eval_every else "epoch",
                               eval_steps=eval_every or 50, logging_steps=10_000, overwrite=True,
                               tokenize_cache=False))
    run.setup()
    run.train()
    history = run.state["history"]
    curve = [(row["step"], row["train_time"], row["accuracy"]) for row in history]
    seconds = run.state["train_time"] if eval_every else run.train_seconds
    return {"seconds": seconds, "accuracy": history[-1]["accuracy"], "precision": run.precision, "curve": curve}


def run_one(variant: str, n_train: int, n_eval: int, workdir: Path, eval_every: int | None = None,
            seed: int = SEED) -> dict:
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.manual_seed(seed)
    train_rows, eval_rows = load_rows("train", n_train), load_rows("test", n_eval)
    if variant == "textfit":
        result = run_textfit(train_rows, eval_rows, workdir, eval_every, seed)
    else:
        result = run_trainer(variant == "trainer-best", train_rows, eval_rows, workdir, eval_every, seed)
    from transformers import AutoTokenizer

    tokens, squares = real_token_stats(AutoTokenizer.from_pretrained(model_path()), [r["text"] for r in train_rows])
    return {**result, "variant": variant, "real_tokens": tokens, "sum_len_sq": squares, "samples": n_train,
            "peak_rss_mb": peak_rss_mb()}


# ---------------------------------------------------------------------------------------------- ceiling


def matmul_ceiling(dtype_name: str, repeats: int = 7) -> float:
    """GFLOP/s of a 2048^3 matmul on this machine now (median), the denominator of model FLOPs utilisation."""
    import torch

    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
    torch.matmul(a, b)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        rates.append(2 * 2048**3 / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates)


def model_flop_terms() -> tuple[int, int, int]:
    """(non-embedding parameters, layers, hidden size) of the default model."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(model_path())
    embedding = sum(p.numel() for n, p in model.named_parameters() if "embeddings" in n)
    total = sum(p.numel() for p in model.parameters())
    return total - embedding, model.config.num_hidden_layers, model.config.hidden_size


def machine() -> str:
    import torch

    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        flags = Path("/proc/cpuinfo").read_text()
        extras = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    except OSError:
        extras = []
    return (f"{cpu}, {os.cpu_count()} cores ({', '.join(extras) or 'no native bf16'}), "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads, Python {platform.python_version()}")


# ---------------------------------------------------------------------------------------------- main


def run_in_subprocess(variant: str, args: argparse.Namespace, workdir: str, *extra: str) -> dict:
    cmd = [sys.executable, __file__, "--run-one", variant, "--train-samples", str(args.train_samples),
           "--eval-samples", str(args.eval_samples), "--workdir", workdir, *extra]
    out = subprocess.run(cmd, capture_output=True, text=True)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if out.returncode or line is None:
        print(out.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"{variant} failed")
    return json.loads(line[7:])


def time_to_accuracy(args: argparse.Namespace) -> int:
    """Training seconds (evaluation excluded) until validation accuracy first reaches the target."""
    target = args.time_to_accuracy
    lines = ["| variant | steps to target | training time to target (s) | accuracy curve (step: accuracy) |",
             "|---|---|---|---|"]
    reached = {}
    for variant in ("trainer-default", "textfit"):
        result = run_in_subprocess(variant, args, f"{args.workdir}/tta-{variant}", "--time-to-accuracy",
                                   str(target), "--eval-every", str(args.eval_every))
        hit = next(((step, secs) for step, secs, acc in result["curve"] if acc >= target), None)
        reached[variant] = hit
        curve = ", ".join(f"{step}: {acc:.3f}" for step, _, acc in result["curve"])
        lines.append(f"| {variant} | {hit[0] if hit else 'not reached'} | "
                     f"{f'{hit[1]:.0f}' if hit else '-'} | {curve} |")
        print(f"  {variant}: {hit}", flush=True)
    speedup = ""
    if all(reached.values()):
        ours, theirs = reached["textfit"][1], reached["trainer-default"][1]
        speedup = f"textfit reaches {target} {theirs / ours:.1f}x sooner than the Trainer's default set-up."
    report = "\n".join([
        f"# Time to {target} validation accuracy",
        "",
        f"Machine: {machine()}",
        f"all-MiniLM-L6-v2, the first {args.train_samples} IMDB train reviews (one epoch), evaluated every "
        f"{args.eval_every} steps on the first {args.eval_samples} test reviews; max_length {MAX_LENGTH}, batch "
        f"{BATCH}, lr {LR}, seed {SEED}. Time counts training steps only, not evaluation.",
        "",
        *lines,
        "",
        speedup,
        "",
        f"Command: python benchmarks/train_speed.py --time-to-accuracy {target} --train-samples "
        f"{args.train_samples} --eval-samples {args.eval_samples} --eval-every {args.eval_every}",
    ])
    print(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "time_to_accuracy.md").write_text(report + "\n")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-samples", type=int, default=2048, help="one epoch over this many reviews")
    parser.add_argument("--eval-samples", type=int, default=500)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--time-to-accuracy", type=float, metavar="TARGET",
                        help="instead: evaluate every --eval-every steps and report the training time each variant "
                             "takes to reach TARGET validation accuracy (e.g. 0.85 with --train-samples 3000 "
                             "--eval-samples 300, the IMDB card's scale)")
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--run-one", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=SEED, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", default="/tmp/textfit-bench", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    sys.path.insert(0, str(REPO))

    if args.run_one:
        eval_every = args.eval_every if args.time_to_accuracy else None
        result = run_one(args.run_one, args.train_samples, args.eval_samples, Path(args.workdir), eval_every,
                         args.seed)
        print("RESULT " + json.dumps(result))
        return 0
    if args.time_to_accuracy:
        return time_to_accuracy(args)

    variants = args.variants.split(",")
    ceiling = {"fp32": matmul_ceiling("float32"), "bf16": matmul_ceiling("bfloat16")}
    params, layers, hidden = model_flop_terms()
    results: dict[str, list[dict]] = {v: [] for v in variants}
    for rep in range(args.repeats):
        order = variants if rep % 2 == 0 else variants[::-1]  # interleave, reversing every other round
        for variant in order:
            # every variant gets the same seed within a repetition; repetitions use seeds 42, 43, ...
            result = run_in_subprocess(variant, args, f"{args.workdir}/{variant}-{rep}", "--seed", str(SEED + rep))
            results[variant].append(result)
            print(f"  rep {rep + 1} {variant}: {result['seconds']:.1f} s, accuracy {result['accuracy']:.4f}",
                  flush=True)
    ceiling_after = {"fp32": matmul_ceiling("float32"), "bf16": matmul_ceiling("bfloat16")}
    ceiling = {k: (ceiling[k] + ceiling_after[k]) / 2 for k in ceiling}

    rows = []
    for variant in variants:
        runs = results[variant]
        seconds = statistics.median(r["seconds"] for r in runs)
        first = runs[0]
        flops = 6 * params * first["real_tokens"] + 12 * layers * hidden * first["sum_len_sq"]
        rate = flops / seconds / 1e9
        rows.append({"variant": variant, "precision": first["precision"], "seconds": seconds,
                     "tokens_per_s": first["real_tokens"] / seconds, "samples_per_s": first["samples"] / seconds,
                     "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
                     "mfu_fp32": rate / ceiling["fp32"], "mfu_bf16": rate / ceiling["bf16"],
                     "accuracy": statistics.median(r["accuracy"] for r in runs),
                     "accuracies": [round(r["accuracy"], 4) for r in runs], "runs": len(runs)})
    base = next((r for r in rows if r["variant"] == "trainer-default"), rows[0])
    best = next((r for r in rows if r["variant"] == "trainer-best"), None)
    header = ("| variant | precision | real tokens/s | samples/s | epoch time (s) | x (1) | x (2) | peak RSS (MB) "
              "| MFU vs fp32 / bf16 ceiling | val. accuracy (median; per seed) |")
    lines = [header, "|" + "---|" * 10]
    for r in rows:
        vs_best = f"{r['tokens_per_s'] / best['tokens_per_s']:.2f}" if best else "-"
        lines.append(f"| {r['variant']} | {r['precision']} | {r['tokens_per_s']:,.0f} | {r['samples_per_s']:.1f} | "
                     f"{r['seconds']:.1f} | {r['tokens_per_s'] / base['tokens_per_s']:.2f} | {vs_best} | "
                     f"{r['peak_rss_mb']:,.0f} | {r['mfu_fp32']:.0%} / {r['mfu_bf16']:.0%} | {r['accuracy']:.4f}; "
                     f"{', '.join(f'{a:.3f}' for a in r['accuracies'])} |")
    report = "\n".join([
        "# Training speed: HF Trainer vs textfit",
        "",
        f"Machine: {machine()}",
        f"Matmul ceiling (2048^3, median of start and end of run): fp32 {ceiling['fp32']:.0f} GFLOP/s, "
        f"bf16 {ceiling['bf16']:.0f} GFLOP/s",
        f"Model: all-MiniLM-L6-v2 ({params / 1e6:.1f} M non-embedding params). Data: the first {args.train_samples} "
        f"IMDB train reviews (one epoch, {args.train_samples // BATCH} steps), accuracy on the first "
        f"{args.eval_samples} test reviews. max_length {MAX_LENGTH}, batch {BATCH}, lr {LR}, seed {SEED}, "
        "AdamW, linear schedule.",
        f"Medians of {args.repeats} repetitions, each a fresh process, runs interleaved; repetition r uses seed "
        f"{SEED}+r for every variant (accuracy after one short epoch varies by several points between seeds, so "
        "the median over seeds is the comparable figure). Epoch time is the training loop only (not loading or "
        "tokenizing); tokens/s counts real (unpadded) tokens.",
        "",
        *lines,
        "",
        "MFU = (6 x non-embedding params x real tokens + 12 x layers x hidden x sum(len^2)) / time / ceiling.",
        "",
        NOTES,
        f"Command: python benchmarks/train_speed.py --repeats {args.repeats} --train-samples {args.train_samples} "
        f"--eval-samples {args.eval_samples}",
    ])
    print()
    print(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "train_speed.md").write_text(report + "\n")
    (RESULTS / "train_speed.json").write_text(json.dumps({"rows": rows, "raw": results, "ceiling": ceiling}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
