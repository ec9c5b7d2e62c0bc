"""Training speed on this machine: the Hugging Face Trainer as tutorials run it, the Trainer at its best honest
CPU settings, and `textfit train`, on the same model, data, hyperparameters and steps, in one run.

    make bench-train                                   # = python benchmarks/train_speed.py
    python benchmarks/train_speed.py --repeats 1 --train-samples 256   # a quick look
    python benchmarks/train_speed.py --time-to-accuracy 0.85 --train-samples 3000 --eval-samples 300

Interrupted, the same command again measures only the runs still missing (kept in WORKDIR/finished-runs.jsonl,
reused only for the same settings, code and machine); --fresh measures them all again.

Every run is a fresh process that a user would start: the Trainer variants run the script a tutorial has the user
write (read the data, tokenize, train, evaluate, save the model), textfit runs the `textfit train` command. Two
times are reported for each:
- the whole process, from the command's start to a written model, measured from outside (imports, reading and
  tokenizing the data, training, the final evaluation and writing the output folder: what a user waits for);
- the training loop, the sum of the optimizer steps' times (evaluation excluded), measured the same way inside
  both (Trainer callbacks on_step_begin/on_step_end; textfit's history `train_time`).
Accuracy is scored from predictions paired with their own labels (`predict().label_ids` for the Trainer, whose
length-grouped sampler reorders the evaluation set; textfit's errors.jsonl by review id), and each result carries
both lists so `tests/benchmarks/test_train_speed.py` can check the score.

(1) trainer-default: padding="max_length" (every batch 256 wide), fp32, random batches (the text-classification
    example's defaults; its optimizer is already fused AdamW).
(2) trainer-best: DataCollatorWithPadding(pad_to_multiple_of=32), train_sampling_strategy="group_by_length",
    bf16 where the CPU has native bf16, eager attention while attention dropout is on.
(3) textfit: `textfit train` with its defaults (no token cache: a first run).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from textfit.io import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
IMDB = REPO.parent / "shared" / "data" / "imdb"
RESULTS = REPO / "benchmarks" / "results"
VARIANTS = ("trainer-default", "trainer-best", "textfit", "textfit-no-baseline")
CURVE_VARIANTS = VARIANTS[:3]  # time to accuracy: the baseline beside textfit does not change its curve
# textfit with one speed default turned off (--variants textfit,textfit-no-grouping,...): which default, if any,
# costs accuracy per step. Each also leaves the TF-IDF baseline out, which does not touch the model.
ABLATIONS = {
    "textfit-no-baseline": [],
    "textfit-no-grouping": ["--no-group-by-length"],
    "textfit-fp32": ["--precision", "fp32"],
    "textfit-no-fast-dropout": ["--no-fast-dropout"],
    "textfit-pad-1": ["--pad-to-multiple-of", "1"],
    # the fresh head at the learning rate, as the Trainer (the default's 5e-3 is 100x the LR here)
    "textfit-head-lr-1": ["--head-learning-rate", "0"],
}

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
- fast dropout (`--no-fast-dropout`): dropout masks from 16 random bits an element instead of `bernoulli_`'s
  float, four elements from each 64-bit draw, the attention probabilities masked in bf16 and the 1/(1-p) scale
  moved to the smaller attention output. In the profile of a bf16 step, `bernoulli_` alone was 30% of the time;
  drawing one 16-bit integer per element raised the loop's real tokens/s by about 25%; four per 64-bit draw then
  took about 11% off a step at 16x256 (measured within one process: `benchmarks/profile_step.py`,
  results/profile_step.md). Same drop probability (to 2**-16) and scaling, another random stream;
- eager attention while training with attention dropout (PyTorch's CPU SDPA with dropout falls back to a slower
  unfused path: 1.27 s vs 1.06 s per 16x256 step), SDPA for evaluation; under bf16 the attention scores stay
  in bf16 through the mask and the softmax (eager attention turns the batch x heads x length x length scores into
  float32 and back): 7.2% less per step in an A/B within one process (results/profile_step.md);
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
EVAL_BATCH = 32
LR = 5e-5
SEED = 42


# ---------------------------------------------------------------------------------------------- data


def prepare_data(folder: Path, n_train: int, n_eval: int) -> Path:
    """The first n IMDB train and test reviews (both splits are shuffled) as a folder of JSON Lines files."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_eval)):
        rows = []
        with gzip.open(IMDB / f"{split}.jsonl.gz", "rt", encoding="utf-8") as handle:
            for line in handle:
                rows.append(line)
                if len(rows) == n:
                    break
        atomic_write_text(folder / f"{split}.jsonl", "".join(rows))
    atomic_write_text(folder / "labels.json", '["neg", "pos"]')
    return folder


def read_rows(path: Path) -> list[dict]:
    """JSON Lines split on newlines only (reviews hold U+2028, which splitlines() would also split on)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]


def default_model() -> str:
    from textfit.models import resolve_model

    return resolve_model("minilm-l6").path


# ---------------------------------------------------------------------------------------------- the Trainer


def trainer_script(best: bool, data: Path, out: Path, seed: int, eval_every: int | None, model_path: str) -> dict:
    """What a Trainer user writes and runs; returns the loop time, the paired predictions and the curve."""
    import numpy as np
    from datasets import Dataset
    from transformers import (
        AutoConfig,
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        default_data_collator,
    )

    from textfit.precision import cpu_has_fast_bf16

    tok = AutoTokenizer.from_pretrained(model_path)
    dropout = getattr(AutoConfig.from_pretrained(model_path), "attention_probs_dropout_prob", 0) or 0
    extra = {"attn_implementation": "eager"} if best and dropout > 0 else {}
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2, **extra)
    padding = False if best else "max_length"

    def tokenize(batch):
        return tok(batch["text"], truncation=True, max_length=MAX_LENGTH, padding=padding)

    def dataset(split: str) -> Dataset:
        rows = [{"text": r["text"], "label": r["label"]} for r in read_rows(data / f"{split}.jsonl")]
        return Dataset.from_list(rows).map(tokenize, batched=True, remove_columns=["text"])

    train_ds, eval_ds = dataset("train"), dataset("test")
    bf16 = best and cpu_has_fast_bf16()
    args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=BATCH,
                             per_device_eval_batch_size=EVAL_BATCH, learning_rate=LR, num_train_epochs=1, seed=seed,
                             report_to="none", save_strategy="no", use_cpu=True, bf16=bf16,
                             eval_strategy="steps" if eval_every else "no", eval_steps=eval_every,
                             disable_tqdm=True, logging_strategy="no",
                             train_sampling_strategy="group_by_length" if best else "random")
    collator = DataCollatorWithPadding(tok, pad_to_multiple_of=32) if best else default_data_collator
    curve: list[tuple[int, float, float]] = []  # (step, seconds of training so far, accuracy)

    class TrainClock(TrainerCallback):
        """Training time without evaluation time, and the accuracy at each evaluation."""

        spent = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.spent += time.perf_counter() - self.started

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            curve.append((state.global_step, round(self.spent, 2), metrics["eval_accuracy"]))

    def accuracy_of(prediction) -> dict:  # label_ids come in the sampler's order, as the predictions do
        return {"accuracy": float((np.argmax(prediction.predictions, -1) == prediction.label_ids).mean())}

    clock = TrainClock()
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds, data_collator=collator,
                      compute_metrics=accuracy_of, callbacks=[clock])
    trainer.train()
    prediction = trainer.predict(eval_ds)
    trainer.save_model(str(out / "model"))
    tok.save_pretrained(str(out / "model"))
    predicted = np.argmax(prediction.predictions, -1)
    return {"loop_seconds": clock.spent, "precision": "bf16" if bf16 else "fp32", "curve": curve,
            "predictions": predicted.tolist(), "label_ids": prediction.label_ids.tolist(),
            "accuracy": float((predicted == prediction.label_ids).mean())}


# ---------------------------------------------------------------------------------------------- textfit


def textfit_command(data: Path, out: Path, seed: int, eval_every: int | None, model_path: str,
                    variant: str = "textfit") -> list[str]:
    cmd = [sys.executable, "-m", "textfit", "train", "--dataset", str(data), "--eval-split", "test",
           "--output-dir", str(out), "--model", model_path, "--learning-rate", str(LR), "--train-batch-size",
           str(BATCH), "--eval-batch-size", str(EVAL_BATCH), "--epochs", "1", "--seed", str(seed),
           "--max-length", str(MAX_LENGTH), "--logging-steps", "10000", "--no-tokenize-cache", "--overwrite"]
    if eval_every:
        cmd += ["--eval-strategy", "steps", "--eval-steps", str(eval_every)]
    if variant == "textfit":
        return cmd
    return cmd + ["--baseline", "none"] + ABLATIONS[variant]


def read_textfit(out: Path, data: Path) -> dict:
    """textfit's own figures, and its predictions rebuilt from errors.jsonl (every mistake, by review id)."""
    history = json.loads((out / "history.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    gold = read_rows(data / "test.jsonl")
    names = json.loads((data / "labels.json").read_text())
    wrong = {}
    for line in filter(None, (out / "errors.jsonl").read_text(encoding="utf-8").split("\n")):
        row = json.loads(line)
        wrong[row["id"]] = names.index(row["predicted"])
    predictions = [wrong.get(r["id"], r["label"]) for r in gold]
    rows = history["history"]
    return {"loop_seconds": rows[-1]["train_time"], "precision": history["precision"],
            "curve": [(r["step"], r["train_time"], r["accuracy"]) for r in rows],
            "predictions": predictions, "label_ids": [r["label"] for r in gold],
            "accuracy": metrics["eval"]["accuracy"], "baseline": metrics.get("baseline")}


# ---------------------------------------------------------------------------------------------- one run


def run_variant(variant: str, data: Path, workdir: Path, seed: int, eval_every: int | None, model: str) -> dict:
    out = workdir / f"{variant}-seed{seed}"
    if variant.startswith("textfit"):
        cmd = textfit_command(data, out, seed, eval_every, model, variant)
    else:
        cmd = [sys.executable, __file__, "--run-trainer", variant, "--data", str(data), "--out", str(out),
               "--seed", str(seed), "--model", model] + (["--eval-every", str(eval_every)] if eval_every else [])
    start = time.perf_counter()
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                               env=os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                                                 "PYTHONPATH": str(REPO)})
    # wait4 gives this child's own peak RSS; communicate() first would reap it before we could ask
    stdout_chunks, stderr_chunks = _drain(process)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code:
        print("".join(stderr_chunks)[-3000:], file=sys.stderr)
        raise SystemExit(f"{variant} (seed {seed}) failed with exit code {code}")
    if variant.startswith("textfit"):
        result = read_textfit(out, data)
    else:
        line = next(ln for ln in "".join(stdout_chunks).splitlines() if ln.startswith("RESULT "))
        result = json.loads(line[7:])
    return {**result, "variant": variant, "seed": seed, "process_seconds": seconds,
            "peak_rss_mb": usage.ru_maxrss / 1024}


def _drain(process: subprocess.Popen) -> tuple[list[str], list[str]]:
    """Read both pipes to their end without reaping the process (threads, so neither pipe fills up)."""
    import threading

    out: list[str] = []
    err: list[str] = []
    readers = [threading.Thread(target=lambda s, b: b.append(s.read()), args=(stream, buf))
               for stream, buf in ((process.stdout, out), (process.stderr, err))]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    return out, err


# ---------------------------------------------------------------------------------------------- machine


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


def matmul_ceilings() -> dict[str, float]:
    """fp32's ceiling, and bf16's where the CPU has native bf16: emulated, one bf16 2048^3 matmul took 88 s on an
    AMD EPYC without AVX-512, so measuring it would cost the benchmark half an hour and tell nothing."""
    from textfit.precision import cpu_has_fast_bf16

    return {"fp32": matmul_ceiling("float32")} | ({"bf16": matmul_ceiling("bfloat16")} if cpu_has_fast_bf16() else {})


def model_flop_terms(model_path: str) -> tuple[int, int, int]:
    """(non-embedding parameters, layers, hidden size) of the model."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(model_path)
    embedding = sum(p.numel() for n, p in model.named_parameters() if "embeddings" in n)
    total = sum(p.numel() for p in model.parameters())
    return total - embedding, model.config.num_hidden_layers, model.config.hidden_size


def real_token_stats(model_path: str, data: Path) -> tuple[int, int]:
    """Real (unpadded) tokens and sum of squared lengths, for one epoch over the training texts."""
    from transformers import AutoTokenizer

    texts = [r["text"] for r in read_rows(data / "train.jsonl")]
    lengths = [len(ids) for ids in AutoTokenizer.from_pretrained(model_path)(texts, truncation=True,
                                                                              max_length=MAX_LENGTH)["input_ids"]]
    return sum(lengths), sum(s * s for s in lengths)


def code_version() -> str:
    """The commit measured (and whether the working tree differed from it): a figure belongs to its code."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--untracked-files=no", "--", "textfit", "benchmarks/*.py")
    return f"textfit at commit {commit}" + (" with uncommitted changes" if changed else "")


def machine() -> str:
    import torch

    cpu, flags = platform.processor() or "cpu", ""
    try:
        info = Path("/proc/cpuinfo").read_text()
        cpu = next(ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name"))
        flags = next(ln for ln in info.splitlines() if ln.startswith("flags"))
    except (OSError, StopIteration):
        pass
    bf16 = [f for f in ("avx512_bf16", "amx_bf16") if f" {f}" in flags]
    return (f"{cpu}, {os.cpu_count()} cores ({', '.join(bf16) if bf16 else 'no native bf16: fp32 only'}), "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads, Python {platform.python_version()}")


# ---------------------------------------------------------------------------------------------- reports


def spread(values: list[float], fmt: str = "{:.1f}") -> str:
    """Median, then the range over seeds."""
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def speed_report(args: argparse.Namespace, results: dict[str, list[dict]], ceiling: dict[str, float],
                 flop_terms: tuple[int, int, int], tokens: tuple[int, int]) -> tuple[str, list[dict]]:
    params, layers, hidden = flop_terms
    flops = 6 * params * tokens[0] + 12 * layers * hidden * tokens[1]
    rows = [summary_row(variant, runs, flops, tokens[0], ceiling) for variant, runs in results.items()]
    lines = speed_table(rows, results)
    steps = -(-args.train_samples // BATCH)
    report = "\n".join([
        "# Training speed: HF Trainer vs textfit",
        "",
        f"Machine: {machine()}",
        f"Code: {code_version()}",
        f"Matmul ceiling (2048^3, median of start and end of run): fp32 {ceiling['fp32']:.0f} GFLOP/s, "
        + (f"bf16 {ceiling['bf16']:.0f} GFLOP/s" if "bf16" in ceiling else "bf16 not measured (no native bf16)"),
        f"Model: {args.model_name} ({params / 1e6:.1f} M non-embedding params). Data: the first {args.train_samples:,} "
        f"IMDB train reviews (one epoch, {steps} steps), accuracy on the first {args.eval_samples:,} test reviews. "
        f"max_length {MAX_LENGTH}, batch {BATCH}, lr {LR}, AdamW, linear schedule.",
        f"{args.repeats} seeds ({', '.join(str(SEED + i) for i in range(args.repeats))}), the same for every "
        "variant; each run a fresh process, variants interleaved (order reversed every other seed). Medians, with "
        "the range over seeds in brackets. x (1), x (2): how many times faster than the Trainer's defaults and "
        "than its best settings.",
        "- whole process: from the command's start to a written model (imports, reading and tokenizing, training, "
        "the final evaluation, writing the model), timed from outside;",
        "- training loop: the sum of the optimizer steps' times, evaluation excluded, timed the same way in both.",
        *baseline_note(results),
        "Accuracy is scored from predictions paired with their own labels (see the script's docstring).",
        "",
        *lines,
        "",
        "MFU = (6 x non-embedding params x real tokens + 12 x layers x hidden x sum(len^2)) / loop time / ceiling.",
        "",
        NOTES,
        f"Command: python benchmarks/train_speed.py --repeats {args.repeats} --train-samples {args.train_samples} "
        f"--eval-samples {args.eval_samples}{variants_flag(args)}{name_flag(args)}",
    ])
    return report, rows


def summary_row(variant: str, runs: list[dict], flops: float, real_tokens: int, ceiling: dict[str, float]) -> dict:
    """A variant's medians over seeds, and each seed's figures beside them."""
    loop = statistics.median(r["loop_seconds"] for r in runs)
    return {"variant": variant, "precision": runs[0]["precision"],
            "process_seconds": statistics.median(r["process_seconds"] for r in runs),
            "loop_seconds": loop, "tokens_per_s": real_tokens / loop,
            "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
            "mfu_fp32": flops / loop / 1e9 / ceiling["fp32"],
            "mfu_bf16": flops / loop / 1e9 / ceiling["bf16"] if "bf16" in ceiling else None,
            "accuracy": statistics.median(r["accuracy"] for r in runs),
            "accuracies": [round(r["accuracy"], 4) for r in runs], "seeds": [r["seed"] for r in runs],
            "process_all": [round(r["process_seconds"], 1) for r in runs],
            "loop_all": [round(r["loop_seconds"], 1) for r in runs]}


def speed_table(rows: list[dict], results: dict[str, list[dict]]) -> list[str]:
    """The markdown table: each variant's times against the Trainer's defaults (1) and its best settings (2)."""
    by = {r["variant"]: r for r in rows}
    lines = ["| variant | precision | whole process (s): median (range) | x (1) | x (2) | training loop (s): median "
             "(range) | x (1) | x (2) | real tokens/s (loop) | peak RSS (MiB) | MFU vs fp32 / bf16 ceiling | "
             "accuracy: median (per seed) |", "|" + "---|" * 12]
    for r in rows:
        runs = results[r["variant"]]

        def ratio(key: str, other: str, row: dict = r) -> str:
            return f"{by[other][key] / row[key]:.2f}" if other in by else "-"

        lines.append(
            f"| {r['variant']} | {r['precision']} | {spread([x['process_seconds'] for x in runs])} | "
            f"{ratio('process_seconds', 'trainer-default')} | {ratio('process_seconds', 'trainer-best')} | "
            f"{spread([x['loop_seconds'] for x in runs])} | {ratio('loop_seconds', 'trainer-default')} | "
            f"{ratio('loop_seconds', 'trainer-best')} | {r['tokens_per_s']:,.0f} | {r['peak_rss_mb']:,.0f} | "
            f"{r['mfu_fp32']:.0%} / {'-' if r['mfu_bf16'] is None else format(r['mfu_bf16'], '.0%')} | "
            f"{r['accuracy']:.4f} "
            f"({', '.join(f'{a:.3f}' for a in r['accuracies'])}) |")
    return lines


def name_flag(args: argparse.Namespace) -> str:
    return f" --results-name {args.results_name}" if args.results_name else ""


def variants_flag(args: argparse.Namespace) -> str:
    return f" --variants {args.variants}" if args.variants else ""


def baseline_note(results: dict[str, list[dict]]) -> list[str]:
    """What the TF-IDF baseline that every `textfit train` fits beside the model costs the whole process."""
    runs = [r["baseline"] for r in results.get("textfit", []) if r.get("baseline")]
    if not runs or "textfit-no-baseline" not in results:
        return []
    cpu = statistics.median(b["seconds"] for b in runs)
    where = "in a forked process beside training" if all(b.get("background") for b in runs) else "after training"
    return [f"- textfit-no-baseline: the same command with `--baseline none`. textfit fits its TF-IDF baseline "
            f"{where}; fitted and scored, it took {cpu:.1f} CPU seconds (median), and the difference between the "
            "two rows is what it costs a user's wait."]


def time_to_accuracy_report(args: argparse.Namespace, results: dict[str, list[dict]]) -> tuple[str, dict]:
    target = args.time_to_accuracy
    lines = ["| variant | seconds of training to target: median (per seed) | steps to target (per seed) | "
             "accuracy after the epoch: median (per seed) |", "|---|---|---|---|"]
    summary = {}
    curves = []
    for variant, runs in results.items():
        hits = [next(((s, t) for s, t, a in r["curve"] if a >= target), None) for r in runs]
        seconds = [h[1] for h in hits if h]
        final = [r["accuracy"] for r in runs]
        median = statistics.median(seconds) if len(seconds) == len(hits) else None
        summary[variant] = median
        per_seed = ", ".join(f"{h[1]:.0f}" if h else "not reached" for h in hits)
        lines.append(f"| {variant} | {f'{median:.0f}' if median is not None else 'not reached by every seed'} "
                     f"({per_seed}) | {', '.join(str(h[0]) if h else '-' for h in hits)} | "
                     f"{statistics.median(final):.3f} ({', '.join(f'{a:.3f}' for a in final)}) |")
        for r in runs:
            curves.append(f"- {variant}, seed {r['seed']}: " + ", ".join(f"{s}: {a:.3f}" for s, _, a in r["curve"]))
    verdict = []
    for variant in results:
        if variant in ABLATIONS and summary.get(variant) and summary.get("textfit"):
            verdict.append(f"{variant} reaches {target} in {summary[variant] / summary['textfit']:.2f}x textfit's "
                           "time (medians).")
    if summary.get("textfit"):
        for peer in ("trainer-default", "trainer-best"):
            if summary.get(peer):
                verdict.append(f"textfit reaches {target} {summary[peer] / summary['textfit']:.1f}x sooner than "
                               f"{peer} (medians).")
    report = "\n".join([
        f"# Time to {target} validation accuracy",
        "",
        f"Machine: {machine()}",
        f"Code: {code_version()}",
        f"{args.model_name}, the first {args.train_samples:,} IMDB train reviews (one epoch), evaluated every "
        f"{args.eval_every} steps on the first {args.eval_samples:,} test reviews; max_length {MAX_LENGTH}, batch "
        f"{BATCH}, lr {LR}; seeds {', '.join(str(SEED + i) for i in range(args.repeats))} for every variant. "
        "Time counts training steps only, not evaluation.",
        "",
        *lines,
        "",
        *verdict,
        "",
        "Accuracy by step, median over the seeds (learning per step, whatever a step costs):",
        "",
        *per_step_table(results),
        "",
        "Accuracy at each evaluation (step: accuracy):",
        *curves,
        "",
        f"Command: python benchmarks/train_speed.py --time-to-accuracy {target} --train-samples "
        f"{args.train_samples} --eval-samples {args.eval_samples} --eval-every {args.eval_every} "
        f"--repeats {args.repeats}{variants_flag(args)}{name_flag(args)}",
    ])
    return report, summary


def per_step_table(results: dict[str, list[dict]]) -> list[str]:
    """Each variant's median accuracy at each evaluated step: the variants' learning per step side by side."""
    steps = sorted({s for runs in results.values() for r in runs for s, _, _ in r["curve"]})
    lines = ["| variant | " + " | ".join(str(s) for s in steps) + " |", "|---|" + "---|" * len(steps)]
    for variant, runs in results.items():
        at = [[a for r in runs for s, _, a in r["curve"] if s == step] for step in steps]
        lines.append(f"| {variant} | " + " | ".join(f"{statistics.median(a):.3f}" if a else "-" for a in at) + " |")
    return lines


class Finished:
    """The runs of an interrupted benchmark, kept so that running the same command again measures only the rest.
    A run is reused only for the same settings, code and machine: a pull in between starts the table afresh."""

    def __init__(self, workdir: Path, args: argparse.Namespace, model: str, fresh: bool = False):
        self.path = workdir / "finished-runs.jsonl"
        if fresh:
            self.path.unlink(missing_ok=True)
        self.key = {"code": code_version(), "machine": machine(), "model": model, "train": args.train_samples,
                    "eval": args.eval_samples, "eval_every": args.eval_every if args.time_to_accuracy else None}
        lines = self.path.read_text().splitlines() if self.path.is_file() else []
        rows = [json.loads(line) for line in lines if line.endswith("}")]  # not a line cut short by a kill
        self.runs = [r["result"] for r in rows if r["key"] == self.key]

    def get(self, variant: str, seed: int) -> dict | None:
        return next((r for r in self.runs if r["variant"] == variant and r["seed"] == seed), None)

    def add(self, result: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:  # one line a run: a kill mid-write loses at most that run
            handle.write(json.dumps({"key": self.key, "result": result}) + "\n")


# ---------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="seeds 42, 43, ... (>= 3 where accuracy is compared)")
    parser.add_argument("--train-samples", type=int, default=1600, help="one epoch over this many reviews (100 steps)")
    parser.add_argument("--eval-samples", type=int, default=500)
    parser.add_argument("--variants", help=f"default: {','.join(VARIANTS)}; with --time-to-accuracy "
                                           f"{','.join(CURVE_VARIANTS)}; textfit without one default: "
                                           f"{','.join(ABLATIONS)}")
    parser.add_argument("--time-to-accuracy", type=float, metavar="TARGET",
                        help="instead: evaluate every --eval-every steps and report the training time each variant "
                             "takes to reach TARGET validation accuracy (e.g. 0.85 with --train-samples 3000 "
                             "--eval-samples 300, the IMDB card's scale)")
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--model", help="model folder (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--workdir", default="/tmp/textfit-bench-train")
    parser.add_argument("--fresh", action="store_true", help="measure every run again, even those already made "
                        "with the same settings, code and machine (kept in WORKDIR/finished-runs.jsonl)")
    parser.add_argument("--results-dir", default=str(RESULTS), help="where the tables are written")
    parser.add_argument("--results-name", help="the tables' file name without .md/.json (default train_speed, or "
                        "time_to_accuracy): another CPU kind's table beside this one's, e.g. train_speed-fp32-only")
    parser.add_argument("--run-trainer", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=SEED, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run_all(args: argparse.Namespace, variants: list[str], data: Path, workdir: Path, model: str,
            eval_every: int | None) -> dict[str, list[dict]]:
    """Every variant once per seed, the order reversed every other seed; a run finished earlier (same code, CPU
    and settings) is read back instead of measured twice, so an interrupted benchmark continues."""
    results: dict[str, list[dict]] = {v: [] for v in variants}
    done = Finished(workdir, args, model, fresh=args.fresh)
    for rep in range(args.repeats):
        for variant in variants if rep % 2 == 0 else variants[::-1]:
            result, earlier = done.get(variant, SEED + rep), " (measured earlier)"
            if result is None:
                result, earlier = run_variant(variant, data, workdir, SEED + rep, eval_every, model), ""
                done.add(result)
            results[variant].append(result)
            print(f"  seed {SEED + rep} {variant}: process {result['process_seconds']:.1f} s, loop "
                  f"{result['loop_seconds']:.1f} s, accuracy {result['accuracy']:.4f}{earlier}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    sys.path.insert(0, str(REPO))
    if args.run_trainer:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        result = trainer_script(args.run_trainer == "trainer-best", Path(args.data), Path(args.out), args.seed,
                                args.eval_every if args.eval_every and args.eval_every > 0 else None, args.model)
        print("RESULT " + json.dumps(result))
        return 0

    model = args.model or default_model()
    args.model_name = "all-MiniLM-L6-v2" if not args.model else Path(args.model).name
    workdir = Path(args.workdir)
    data = prepare_data(workdir / "data", args.train_samples, args.eval_samples)
    eval_every = args.eval_every if args.time_to_accuracy else None
    variants = args.variants.split(",") if args.variants else list(CURVE_VARIANTS if args.time_to_accuracy
                                                                     else VARIANTS)
    ceiling = matmul_ceilings()
    results = run_all(args, variants, data, workdir, model, eval_every)
    after = matmul_ceilings()
    ceiling = {k: (ceiling[k] + after[k]) / 2 for k in ceiling}

    out = Path(args.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    if args.time_to_accuracy:
        report, summary = time_to_accuracy_report(args, results)
        name = args.results_name or "time_to_accuracy"
        atomic_write_text(out / f"{name}.md", report + "\n")
        atomic_write_text(out / f"{name}.json", json.dumps({"summary": summary, "raw": results}, indent=1))
    else:
        report, rows = speed_report(args, results, ceiling, model_flop_terms(model), real_token_stats(model, data))
        name = args.results_name or "train_speed"
        atomic_write_text(out / f"{name}.md", report + "\n")
        atomic_write_text(out / f"{name}.json", json.dumps({"rows": rows, "raw": results, "ceiling": ceiling},
                                                         indent=1))
    print()
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
