"""Where a training step's time goes: textfit's own loop set-up (model, batches, precision, dropout, optimizer),
on real IMDB reviews, split into its phases and, inside forward and backward, into the kinds of operator.

    python benchmarks/profile_step.py                        # 30 steps, max_length 256, batch 16: about 2 min
    python benchmarks/profile_step.py --no-fast-dropout --precision fp32
    python benchmarks/profile_step.py --freeze-embeddings    # what the word-embedding gradient costs

The run is set up by FineTune exactly as `textfit train` sets it up; the steps are then taken here, phase by
phase (forward, loss, backward, clipping, optimizer, zero_grad), each timed with perf_counter (a CPU runs them
synchronously), over the same length-grouped batches the loop would take. A second pass over the same batches
runs under torch.profiler and groups operator self-time by kind: matmul, attention softmax, dropout, layer norm,
GELU, embedding gradient, dtype casts, the rest. The same process then alternates, over the same batches, eager
attention's float32 softmax with textfit's bf16 scores, and (with fast dropout) the two ways of drawing dropout
masks: A/Bs within one process, as separate processes differ by more than these effects.
Writes benchmarks/results/profile_step.md (appending a section per set-up, so several set-ups sit side by side).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from textfit.io import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
AB_BLOCKS, AB_STEPS = 6, 5  # the A/Bs: alternating blocks of this many steps


def kind_of(name: str) -> str:
    """The kind of an operator, by its aten name (self-time only, so a linear's addmm is not counted twice)."""
    op = name.removeprefix("aten::").lower()
    rules = (("matmul", lambda: op in ("mm", "addmm", "bmm", "baddbmm", "matmul", "linear") or "mkldnn" in op),
             ("attention softmax", lambda: "softmax" in op),
             ("dropout (drawing and applying masks)",
              lambda: any(w in op for w in ("bernoulli", "dropout", "random")) or op in ("where", "ge")),
             ("layer norm", lambda: "layer_norm" in op),
             ("GELU", lambda: "gelu" in op),
             ("embedding (and its gradient)", lambda: "embedding" in op),
             ("dtype casts", lambda: op in ("to", "_to_copy", "copy_", "_copy_from")),
             ("optimizer", lambda: "adam" in op or "_foreach" in op))
    return next((kind for kind, rule in rules if rule()), "other")


def setup_run(args: argparse.Namespace, folder: Path):
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "benchmarks"))
    from train_speed import prepare_data

    from textfit.config import TrainConfig
    from textfit.training import FineTune

    data = prepare_data(folder / "data", args.train_samples, 100)
    config = TrainConfig(dataset=str(data), output_dir=str(folder / "out"), max_length=args.max_length,
                         train_batch_size=args.batch_size, precision=args.precision,
                         fast_dropout=args.fast_dropout, freeze_embeddings=args.freeze_embeddings,
                         baseline="none", seed=42, learning_rate=5e-5)
    run = FineTune(config)
    run.setup()
    return run


def batches(run, count: int) -> list[dict]:
    from textfit.batching import collate, length_grouped_batches

    order = length_grouped_batches(run.train_set.lengths(), run.micro_batch, run.config.seed, 0,
                                   run.config.group_by_length)
    return [collate(run.train_set, indices, run.tokenizer.pad_token_id, run.config.pad_to_multiple_of)
            for indices in order[:count]]


def timed_step(run, batch: dict) -> dict[str, float]:
    """One optimizer step as FineTune._step takes it, with each phase's seconds."""
    acc, times = run.accelerator, {}
    run._mode(training=True)
    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    start = time.perf_counter()
    logits = run.model(**inputs).logits
    times["forward"] = time.perf_counter() - start
    start = time.perf_counter()
    loss = run.loss(logits, labels)
    times["loss"] = time.perf_counter() - start
    start = time.perf_counter()
    acc.backward(loss)
    times["backward"] = time.perf_counter() - start
    start = time.perf_counter()
    if run.config.max_grad_norm > 0:
        acc.clip_grad_norm_(run.model.parameters(), run.config.max_grad_norm)
    times["clip"] = time.perf_counter() - start
    start = time.perf_counter()
    run.optimizer.step()
    run.scheduler.step()
    times["optimizer"] = time.perf_counter() - start
    start = time.perf_counter()
    run.optimizer.zero_grad(set_to_none=True)
    times["zero_grad"] = time.perf_counter() - start
    return times


def operator_kinds(run, steps: list[dict]) -> dict[str, float]:
    """Seconds of operator self-time per kind, over the steps, under torch.profiler."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for batch in steps:
            timed_step(run, batch)
    kinds: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        kinds[kind_of(event.key)] += event.self_cpu_time_total / 1e6
    return dict(kinds)


def mask_costs(elements: int = 16 * 12 * 256 * 256, repeats: int = 5) -> dict[str, float]:
    """Milliseconds for one layer's attention-dropout mask at 16x256 (batch x heads x length x length), three ways."""
    import torch

    ways = {"bernoulli_ (PyTorch's dropout)": lambda: torch.empty(elements).bernoulli_(0.9),
            "one int16 draw per element": lambda: torch.empty(elements, dtype=torch.int16).random_(),
            "four elements per int64 draw (textfit)":
                lambda: torch.empty(elements // 4, dtype=torch.int64).random_(-(2**63), None).view(torch.int16)}
    costs = {}
    for name, draw in ways.items():
        draw()
        start = time.perf_counter()
        for _ in range(repeats):
            draw()
        costs[name] = (time.perf_counter() - start) / repeats * 1000
    return costs


def one_draw_per_element(shape, p: float):
    """The mask as textfit drew it before: one int16 draw per element (for the A/B below)."""
    import torch

    return torch.empty(shape, dtype=torch.int16).random_() >= round(p * 32768)


def attention_fp32_softmax(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """textfit's attention before 2026-11-30 (for the A/B below): the scores scaled, masked and put through the
    softmax in float32 under autocast, as eager attention does, then cast to bf16 for the next matmul."""
    import torch

    from textfit.fast_dropout import keep_mask

    if scaling is None:
        scaling = query.size(-1) ** -0.5
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = torch.nn.functional.softmax(weights, dim=-1)
    if module.training and dropout > 0:
        weights = torch.where(keep_mask(weights.shape, dropout), weights.to(value.dtype), 0)
        return (torch.matmul(weights, value) * (1.0 / (1.0 - dropout))).transpose(1, 2).contiguous(), weights
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


def alternate(run, steps: list[dict], ways: dict[str, Callable[[], None]], blocks: int = AB_BLOCKS) -> dict[str, float]:
    """Median ms per step with each way (a function that puts it in place), in this one process, over the same
    batches, in alternating blocks (separate processes differ by more than the effects measured here). The last
    way is left in place: list textfit's own way last."""
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for block in range(blocks):
        for name in (list(ways) if block % 2 == 0 else list(ways)[::-1]):
            ways[name]()
            start = time.perf_counter()
            for batch in steps:
                timed_step(run, batch)
            seconds[name].append((time.perf_counter() - start) / len(steps))
    list(ways.values())[-1]()
    return {name: statistics.median(values) * 1000 for name, values in seconds.items()}


def mask_ab(run, steps: list[dict]) -> dict[str, float]:
    """The two ways of drawing dropout masks."""
    import textfit.fast_dropout as fast

    def use(draw):
        return lambda: setattr(fast, "keep_mask", draw)  # the module's functions look it up at each call

    return alternate(run, steps, {"one int16 draw per element": use(one_draw_per_element),
                                  "four elements per int64 draw": use(fast.keep_mask)})


def attention_ab(run, steps: list[dict]) -> dict[str, float]:
    """Eager attention's float32 softmax against textfit's scores kept in the matmul's dtype."""
    from transformers import AttentionInterface

    import textfit.fast_dropout as fast

    def use(attention):
        return lambda: AttentionInterface.register(fast.ATTENTION_NAME, attention)  # looked up at each forward

    return alternate(run, steps, {"float32 mask and softmax": use(attention_fp32_softmax),
                                  "scores kept in bf16": use(fast.attention_with_fast_dropout)})


def report(args: argparse.Namespace, phases: list[dict[str, float]], kinds: dict[str, float], tokens: int,
           steps: int, comparisons: list[dict[str, float]]) -> str:
    from train_speed import machine

    total = sum(sum(p.values()) for p in phases)
    kinds_total = sum(kinds.values()) or 1.0
    setup = (f"precision {args.precision}, fast dropout {'on' if args.fast_dropout else 'off'}, embeddings "
             f"{'frozen' if args.freeze_embeddings else 'trained'}, max_length {args.max_length}, batch "
             f"{args.batch_size}")
    lines = [f"## {setup}", "", f"Measured on: {machine()}. {steps} steps after {args.warmup} warm-up steps; "
             f"{tokens / total:,.0f} real tokens/s; {total / steps * 1000:,.0f} ms per step.", "",
             "| phase | ms per step (median) | share |", "|---|---|---|"]
    for phase in phases[0]:
        values = [p[phase] for p in phases]
        lines.append(f"| {phase} | {statistics.median(values) * 1000:,.1f} | {sum(values) / total:.1%} |")
    lines += ["", "Inside the steps, operator self-time by kind (torch.profiler, a second pass over the same batches; "
              "the profiler's own overhead included):", "", "| kind | share |", "|---|---|"]
    for kind, seconds in sorted(kinds.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {kind} | {seconds / kinds_total:.1%} |")
    lines += ["", "The random numbers of one layer's attention-dropout mask at 16x256 (12.6M elements): " + ", ".join(
        f"{name} {ms:.0f} ms" for name, ms in mask_costs().items()) + "."]
    for ab in comparisons:
        first, second = ab.values()
        shown = ", ".join(f"{name} {ms:,.0f} ms per step" for name, ms in ab.items())
        lines += ["", f"The same steps in this one process, in {AB_BLOCKS} alternating blocks of {AB_STEPS}: "
                      f"{shown} ({1 - second / first:.1%} less)."]
    command = " ".join(["python benchmarks/profile_step.py", *sys.argv[1:]])
    return "\n".join([*lines, "", f"Command: `{command}`", ""])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--train-samples", type=int, default=800)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--no-fast-dropout", dest="fast_dropout", action="store_false")
    parser.add_argument("--freeze-embeddings", action="store_true")
    parser.add_argument("--output", default=str(RESULTS / "profile_step.md"))
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    with tempfile.TemporaryDirectory() as folder:
        run = setup_run(args, Path(folder))
        steps = batches(run, args.warmup + args.steps)
        for batch in steps[:args.warmup]:  # the prepared model autocasts its forward itself, as in the loop
            timed_step(run, batch)
        phases = [timed_step(run, batch) for batch in steps[args.warmup:]]
        kinds = operator_kinds(run, steps[args.warmup:args.warmup + 10])
        ab_steps = steps[args.warmup:args.warmup + AB_STEPS]
        comparisons = [attention_ab(run, ab_steps), mask_ab(run, ab_steps)] if args.fast_dropout else []
    tokens = sum(int(b["attention_mask"].sum()) for b in steps[args.warmup:])
    text = report(args, phases, kinds, tokens, args.steps, comparisons)
    output = Path(args.output)
    previous = output.read_text() if output.is_file() else "# Where a training step's time goes\n\n"
    atomic_write_text(output, previous + text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
