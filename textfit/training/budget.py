"""A time budget (`--time-budget 20m`): a plan that fits it, measured on the run's own data, and a deadline that
holds it.

Before the first step, a probe times real training steps on the run's own texts at each candidate length, on a
copy of the model (the run itself starts from the pretrained weights, as always): seconds, counted against the
budget. From the probe and the texts' lengths, the plan fills in what the flags left open: max_length and
truncation, how many training examples and epochs, how many evaluations on how many evaluation examples, and
early stopping. After REPLAN_AFTER real steps, and again at the first evaluation (whose real seconds are then
known), the step count is fitted to the time left. The loop runs under a Deadline: when too little time would be
left after the next step for a last evaluation and the output folder, it evaluates (if that fits) and stops,
keeping the best evaluation so far.
"""

from __future__ import annotations

import copy
import math
import random
import re
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from textfit.batching import collate, encode
from textfit.errors import ConfigError

if TYPE_CHECKING:
    from textfit.training.finetune import FineTune

LENGTHS = (64, 128, 256, 512)  # candidate max_length: capped at the model's limit and at what the texts need
COVERED = 0.95  # no candidate longer than the first one that holds this share of the texts whole
ENOUGH_EXAMPLES = 3000  # examples the plan buys before it buys length: the IMDB 3k card's set reaches 0.90
MAX_EPOCHS = 3  # validation loss bottoms out by epoch 2-3 (TrainConfig.epochs)
EVAL_SHARE = 0.15  # of the budget for all evaluations together, at most
ONE_EVAL_SHARE = 0.04  # for one evaluation: a larger evaluation set is cut to a seeded subset
MAX_EVALS = 8
SAFETY = 0.07  # of the budget held back: the probe is short, and the machine may get busier
HEAD_TAIL_FROM = 0.2  # share of texts truncated from which head+tail is planned (+3 points on IMDB at 128 tokens)
SAMPLE = 512  # training texts whose lengths are measured
PROBE_STEPS = 2  # timed steps per length, after one warm-up step
FLOOR_TOKENS = 16  # the shortest batch timed: what a step costs whatever the texts (per_example interpolates)
REPLAN_AFTER = 20  # real steps timed before the step count is fitted to the time left: the probe's few steps at
# full length miss per-step costs that do not shrink with the texts (SST-2 at 5 min: 1,388 steps planned, 1,077 fit)
FINAL_EVAL_FLOOR = 100  # evaluation texts a run cut short before any evaluation is still scored on, at least
WRITE_SLOWDOWN = 2.0  # at most this much slower on a busy machine: one thread among others, not a team of threads
WRITE_SECONDS = 8.0  # writing the folder, its pictures and card (measured: 3-5 s for MiniLM)
BASELINE_SECONDS_PER_CHAR = 2.3e-6  # the TF-IDF baseline's fit and scoring (results/baseline.md: 8.9 s for
# 3,000 IMDB reviews, 7.6 s for 67,349 SST-2 sentences, 2 cores)
PLANNED_LR = 5e-5  # a budget buys few steps, and the default 2e-5 (DistilBERT's cards) is slow for them: on a
# 4,000-review IMDB proxy, MiniLM scored 0.8758 at 5e-5 against 0.8630 at 2e-5 in the same time, better on every
# seed (results/imdb_push.md). IMDB at 5 min, seed 42: 0.8035 at 2e-5, 0.8180 at 5e-5 (results/budget.md, one seed).
# 5e-5 is also the HF Trainer's default, which the budget table compares against.
# what the plan may set; a setting given as a flag (or an API keyword) is kept as it is
PLANNED = ("max_length", "truncation", "max_train_samples", "epochs", "max_steps", "eval_strategy", "eval_steps",
           "max_eval_samples", "early_stopping_patience", "learning_rate")


def parse_budget(text: str) -> float:
    """'90s', '20m', '1.5h' -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)\s*", str(text))
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"time_budget={text!r}: give a duration with its unit, e.g. 90s, 20m or 1h")
    return float(match.group(1)) * {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}[match.group(2)]


@dataclass
class Probe:
    """Seconds per example at each candidate length, measured at that full length, and the texts' lengths."""

    train_seconds: dict[int, float]  # one training example, padded to the length
    eval_seconds: dict[int, float]  # one evaluation example, padded to the length
    token_lengths: np.ndarray  # tokens of a sample of training texts, untruncated
    seconds: float  # what the probe itself took
    mean_chars: float = 0.0  # characters per training text (what the baseline's cost grows with)
    train_floor: float = 0.0  # one training example at FLOOR_TOKENS: the cost that does not shrink with the text
    eval_floor: float = 0.0  # one evaluation example at FLOOR_TOKENS

    def per_example(self, length: int, eval_: bool = False) -> float:
        """At real text lengths (batches are length-grouped): between the cost at FLOOR_TOKENS and the padded cost at
        `length`, in proportion to the tokens the texts fill. Scaling the padded cost alone would miss the part of a
        step that does not shrink with the texts (the optimizer, the Python around the kernels): short texts cost
        more than their tokens say."""
        full = (self.eval_seconds if eval_ else self.train_seconds)[length]
        floor = min(full, self.eval_floor if eval_ else self.train_floor)
        filled = float(np.minimum(self.token_lengths, length).mean()) + 16  # + half the padding to a multiple of 32
        share = min(1.0, max(0.0, (filled - FLOOR_TOKENS) / max(1, length - FLOOR_TOKENS)))
        return floor + (full - floor) * share

    def truncated(self, length: int) -> float:
        return float((self.token_lengths > length).mean())

    def eval_with_windows(self, length: int) -> float:
        """One evaluation example read whole (TrainConfig.windows): its first window costs what a truncated text
        costs, and each further window, half a window on, a full window."""
        stride = max(1, (length - 2) // 2)  # as batching.encode_windows steps, less [CLS] and [SEP]
        extra = np.ceil(np.maximum(0, self.token_lengths - (length - 2)) / stride).mean()
        return self.per_example(length, eval_=True) + float(extra) * self.eval_seconds[length]


@dataclass
class Plan:
    """What the budget bought, in TrainConfig's terms, and the estimate it rests on."""

    budget: float
    settings: dict[str, Any]  # the planned TrainConfig values (only what the flags left open)
    train_examples: int
    of_train: int
    eval_examples: int
    of_eval: int
    evaluations: int
    eval_seconds: float  # one evaluation, as estimated
    step_seconds: float  # one optimizer step, as estimated (the deadline compares the real ones with it)
    write_seconds: float  # the baseline, the folder, its card, as estimated
    eta: float  # seconds from the command's start to a written folder, as planned
    replanned: str | None = None  # the step count fitted after REPLAN_AFTER real steps, in words
    replanned_settings: dict[str, Any] = field(default_factory=dict)  # what that changed of `settings`

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line(), **asdict(self)}

    def line(self) -> str:
        s = self.settings
        length = f"{s.get('max_length')} tokens {s.get('truncation')}"
        line = (f"plan: {self.train_examples:,} of {self.of_train:,} training texts, {s['epochs']:g} epoch(s), "
                f"{length}, lr {s.get('learning_rate'):g}, {self.evaluations} evaluation(s) on "
                f"{self.eval_examples:,} of {self.of_eval:,} "
                f"evaluation texts; about {_minutes(self.eta)} of the {_minutes(self.budget)} budget")
        return f"{line}; {self.replanned}" if self.replanned else line


def _minutes(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 600 else f"{seconds / 60:.0f} min"


def probe(run: FineTune) -> Probe:
    """Time a few real training steps (forward, backward, AdamW) and one evaluation batch at each length worth
    timing, on a copy of the model, with the run's batch size, precision and attention kernels. The probe's
    dropout draws come from a forked random stream, so the run trains exactly as its saved recipe repeats it."""
    start = time.perf_counter()
    cfg, train = run.config, run.data.train
    texts = [ex.text for ex in (train if len(train) <= SAMPLE else random.Random(cfg.seed).sample(train, SAMPLE))]
    token_lengths = np.array([len(ids) for ids in run.tokenizer(texts, truncation=False)["input_ids"]])
    longest = sorted(range(len(texts)), key=lambda i: -token_lengths[i])[:max(cfg.train_batch_size,
                                                                               cfg.eval_batch_size)]
    fixed_length = min(cfg.max_length, run.tokenizer.model_max_length) if "max_length" in run.fixed else None
    train_seconds, eval_seconds = {}, {}
    with torch.random.fork_rng(devices=[]):
        model = copy.deepcopy(run.accelerator.unwrap_model(run.model))
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-9)
        for length in worth_timing(token_lengths, run.tokenizer.model_max_length, fixed_length):
            data = encode(run.tokenizer, [texts[i] for i in longest], max_length=length)
            batch = collate(data, range(min(cfg.train_batch_size, len(longest))), run.tokenizer.pad_token_id, length)
            steps = [_timed_step(run, model, optimizer, batch) for _ in range(PROBE_STEPS + 1)]
            train_seconds[length] = float(np.median(steps[1:])) / len(batch["input_ids"])
            eval_batch = collate(data, range(min(cfg.eval_batch_size, len(longest))), run.tokenizer.pad_token_id,
                                 length)
            eval_seconds[length] = _timed_eval(run, model, eval_batch) / len(eval_batch["input_ids"])
        floor = _timed_floor(run, model, optimizer, [texts[i] for i in longest])
        del model, optimizer
    return Probe(train_seconds, eval_seconds, token_lengths, time.perf_counter() - start,
                 float(np.mean([len(t) for t in texts])), *floor)


def _timed_floor(run: FineTune, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 texts: list[str]) -> tuple[float, float]:
    """Seconds per example (training, evaluation) at FLOOR_TOKENS: the same batch sizes, the texts cut short."""
    cfg = run.config
    data = encode(run.tokenizer, texts, max_length=FLOOR_TOKENS)
    batch = collate(data, range(min(cfg.train_batch_size, len(texts))), run.tokenizer.pad_token_id, FLOOR_TOKENS)
    steps = [_timed_step(run, model, optimizer, batch) for _ in range(PROBE_STEPS + 1)]
    eval_batch = collate(data, range(min(cfg.eval_batch_size, len(texts))), run.tokenizer.pad_token_id, FLOOR_TOKENS)
    return (float(np.median(steps[1:])) / len(batch["input_ids"]),
            _timed_eval(run, model, eval_batch) / len(eval_batch["input_ids"]))


def worth_timing(token_lengths: np.ndarray, limit: int, fixed_length: int | None = None) -> list[int]:
    """The candidate lengths: a given max_length alone; else LENGTHS up to the model's limit, and up to the first
    that holds COVERED of the texts whole (a longer one would only add padding). The plan chooses among these."""
    if fixed_length is not None:
        return [fixed_length]
    out = []
    for length in [n for n in LENGTHS if n <= limit] or [limit]:
        out.append(length)
        if float((token_lengths > length).mean()) <= 1 - COVERED:
            break
    return out


def _timed_step(run: FineTune, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                batch: dict[str, torch.Tensor]) -> float:
    from textfit.training.model import set_mode

    set_mode(model, model, True, run.fast_dropout)
    start = time.perf_counter()
    with run.accelerator.autocast():
        logits = model(**batch).logits
    loss = logits.float().pow(2).mean()  # the loss's own cost is negligible; the backward pass is what counts
    loss.backward()
    if run.config.max_grad_norm > 0:  # as the run clips: a pass over every gradient
        torch.nn.utils.clip_grad_norm_(model.parameters(), run.config.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


@torch.no_grad()
def _timed_eval(run: FineTune, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> float:
    from textfit.training.model import set_mode

    set_mode(model, model, False, run.fast_dropout)
    with run.accelerator.autocast():
        model(**batch)
        start = time.perf_counter()
        model(**batch)
    return time.perf_counter() - start


@dataclass
class Option:
    """One candidate length, and what the budget buys at it."""

    length: int
    seen: int  # training examples the training time buys (epochs included)
    eval_examples: int
    evaluations: int
    train_seconds: float  # one training example at real text lengths
    eval_seconds: float  # one evaluation example


def make_plan(run: FineTune, budget: float, spent: float, measured: Probe, fixed: set[str]) -> Plan:
    """The longest length that still buys ENOUGH_EXAMPLES (or all the data); failing that, the most examples.
    Then epochs up to MAX_EPOCHS, and evaluations within EVAL_SHARE of the budget."""
    n_train = len(run.data.train)
    options = [_option(run, budget, spent, measured, fixed, n) for n in sorted(measured.train_seconds)]
    enough = min(n_train, ENOUGH_EXAMPLES)
    choice = max(options, key=lambda o: (o.seen >= enough, o.length if o.seen >= enough else o.seen))
    if choice.seen < run.config.train_batch_size:
        raise ConfigError(f"time_budget: {budget:.0f} s leaves too little for one training step after {spent:.0f} s "
                          "of loading and probing; give a larger budget")
    return _plan(run, budget, spent, measured, fixed, choice)


def _option(run: FineTune, budget: float, spent: float, measured: Probe, fixed: set[str], length: int) -> Option:
    n_train, n_eval = len(run.data.train), len(run.data.eval)
    one_eval = measured.eval_with_windows(length) if run.config.windows else measured.per_example(length, eval_=True)
    eval_n = n_eval if "max_eval_samples" in fixed else min(n_eval, max(100, int(ONE_EVAL_SHARE * budget / one_eval)))
    evaluations = max(1, min(MAX_EVALS, int(EVAL_SHARE * budget / (eval_n * one_eval))))
    train_time = budget * (1 - SAFETY) - spent - WRITE_SECONDS - evaluations * eval_n * one_eval
    one_train, one_baseline = measured.per_example(length), baseline_seconds(run, measured, 1)
    seen = train_time / (one_train + one_baseline)  # each example costs its steps, and its share of the baseline
    if seen > n_train:  # the baseline sees each example once however many epochs there are
        seen = (train_time - one_baseline * n_train) / one_train
    return Option(length, max(0, int(seen)), eval_n, evaluations, one_train, one_eval)


def baseline_seconds(run: FineTune, measured: Probe, examples: int) -> float:
    """The TF-IDF baseline's fit and scoring over `examples` texts, training and evaluation (0 with baseline none)."""
    return 0.0 if run.config.baseline == "none" else BASELINE_SECONDS_PER_CHAR * measured.mean_chars * examples


def _plan(run: FineTune, budget: float, spent: float, measured: Probe, fixed: set[str], choice: Option) -> Plan:
    cfg, n_train, n_eval = run.config, len(run.data.train), len(run.data.eval)
    train_n = n_train if "max_train_samples" in fixed else min(n_train, choice.seen)
    epochs = cfg.epochs if "epochs" in fixed else round(min(MAX_EPOCHS, max(1.0, choice.seen / train_n)), 2)
    steps = math.ceil(epochs * math.ceil(train_n / cfg.train_batch_size))  # as FineTune counts them
    head_tail = measured.truncated(choice.length) >= HEAD_TAIL_FROM and not cfg.text_pair_column
    planned = {
        "max_length": choice.length, "truncation": "head+tail" if head_tail else "head", "learning_rate": PLANNED_LR,
        "max_train_samples": train_n if train_n < n_train else None, "epochs": epochs, "max_steps": None,
        "eval_strategy": "steps", "eval_steps": math.ceil(steps / choice.evaluations),
        "max_eval_samples": choice.eval_examples if choice.eval_examples < n_eval else None,
        # a whole epoch without a better evaluation; never inside the first epoch, where loss often plateaus first
        "early_stopping_patience": math.ceil(choice.evaluations / epochs) if epochs >= 2 else None,
    }
    settings = {k: getattr(cfg, k) for k in PLANNED} | {k: v for k, v in planned.items() if k not in fixed}
    step_seconds = cfg.train_batch_size * choice.train_seconds
    # the baseline fits the training texts and scores the evaluation texts: both take its time
    write_seconds = WRITE_SECONDS + baseline_seconds(run, measured, train_n + choice.eval_examples)
    eta = spent + steps * step_seconds + choice.evaluations * choice.eval_examples * choice.eval_seconds + write_seconds
    return Plan(budget, settings, train_n, n_train, choice.eval_examples, n_eval, choice.evaluations,
                choice.eval_examples * choice.eval_seconds, step_seconds, write_seconds, eta)


@dataclass
class Deadline:
    """When the output folder must be written by (time.time()), and what is still to come before it. When steps run
    slower than the probe measured (a busier machine), the evaluation and the writing still to come are expected
    to slow down as much."""

    end: float
    eval_seconds: float  # one evaluation, as planned
    write_seconds: float = WRITE_SECONDS  # the baseline and the folder, as planned
    planned_step: float = 0.0  # one step, as planned (0: no plan, no slowdown known)
    step_seconds: float = 0.0  # a recent slow step (decaying maximum)
    measured_eval: float = 0.0  # the slowest evaluation so far
    taken: list[float] = field(default_factory=list)  # every step's seconds, in order
    main_thread: list[float] = field(default_factory=list)  # the CPU seconds the main thread got in each step

    def left(self) -> float:
        return self.end - time.time()

    def mean_step(self) -> float:
        """The real steps' mean seconds, the first one left out (it warms kernels and caches up)."""
        return float(np.mean(self.taken[1:] or self.taken))

    def note_step(self, seconds: float, main_thread_cpu: float | None = None) -> None:
        self.taken.append(seconds)
        self.step_seconds = max(seconds, 0.9 * self.step_seconds)
        if main_thread_cpu is not None:
            self.main_thread.append(main_thread_cpu)

    def note_evaluation(self, seconds: float) -> None:
        self.measured_eval = max(seconds, self.measured_eval)

    def slowdown(self) -> float:
        """How much slower than planned the recent steps run (the median of the last 3, the first step left out:
        it warms up kernels and caches, and once made a 60 s run give up after one step)."""
        recent = self.taken[1:][-3:]
        if self.planned_step <= 0 or not recent:
            return 1.0
        return max(1.0, float(np.median(recent)) / self.planned_step)

    def reserve(self) -> float:
        """A last evaluation and the folder, at the pace the machine has now. Evaluation runs on every core as the
        steps do, so it slows down as they did; the baseline and the folder are written by one thread, which a
        busier machine slows far less (steps 9x slower with two CPU-bound processes beside them on 2 cores)."""
        slower = self.slowdown()
        return max(self.measured_eval, self.eval_seconds * slower) + self.writing(slower)

    def core_share(self) -> float:
        """The share of a core the main thread got in the recent steps (its CPU seconds over the steps' wall
        seconds; the first step left out): about 1 on a machine that runs nothing else, 0.5 when twice as many
        processes as cores want to run. Writing the folder runs on that thread alone, so it takes 1/share of its
        time on an idle machine, however fast the probe's steps were (the probe may have met the same crowd)."""
        wall, cpu = sum(self.taken[1:][-3:]), sum(self.main_thread[1:][-3:])
        if wall <= 0 or not self.main_thread[1:]:
            return 1.0
        return min(1.0, max(0.05, cpu / wall))

    def writing(self, slower: float | None = None) -> float:
        """The baseline and the folder, written by one thread: as much slower than planned as the steps are
        (the recent pace by default), at most WRITE_SLOWDOWN, and never faster than the share of a core that thread
        gets now allows."""
        steps_say = min(self.slowdown() if slower is None else slower, WRITE_SLOWDOWN)
        return self.write_seconds * max(steps_say, 1 / self.core_share())

    def must_stop(self) -> bool:
        """After this step, would one more step leave time for an evaluation and the folder?"""
        return self.left() < 2 * self.step_seconds + self.reserve()

    def can_evaluate(self) -> bool:
        return self.left() > self.reserve()


@dataclass
class Replan:
    """The run fitted to its real steps: what is left of it, at their pace."""

    steps: int  # the step count the run now ends at
    evaluations: int  # evaluations over the whole run (the plan's, or fewer if they no longer fit)
    step_seconds: float  # the real steps' mean (the first one left out)


def replan(plan: Plan, deadline: Deadline, done: int, ceiling: int) -> Replan:
    """The step count that ends training in time for the evaluations and the folder, at the pace of the steps taken
    so far, between one more step and `ceiling` (MAX_EPOCHS of the data). Evaluation is expected to slow down as the
    steps did (never to speed up), and to keep within EVAL_SHARE of the budget: fewer evaluations when they would
    take more."""
    real = deadline.mean_step()
    slower = max(1.0, real / plan.step_seconds) if plan.step_seconds > 0 else 1.0
    one_eval = plan.eval_seconds * slower
    evaluations = plan.evaluations
    if one_eval > 0:
        evaluations = max(1, min(plan.evaluations, int(EVAL_SHARE * plan.budget / one_eval)))
    to_come = evaluations * one_eval + deadline.writing(slower)
    train_left = deadline.left() - SAFETY * plan.budget - to_come
    return Replan(int(min(ceiling, max(done + 1, done + train_left // real))), evaluations, real)


def refit(plan: Plan, deadline: Deadline, done: int, ceiling: int, eval_steps: int) -> int:
    """At the first evaluation: the most steps (up to `ceiling`) whose time, with the evaluations they make due at
    the same cadence and the folder, fits the time left less the margin, at the pace of every step so far and the
    evaluation's measured seconds. The probe's estimates of both ran high on short texts (SST-2 at 10 min: steps
    15%, an evaluation 2.4x), and the run ended with 23% of its budget unused (results/budget.md)."""
    pace = deadline.mean_step()
    room = deadline.left() - SAFETY * plan.budget - deadline.writing()

    def needs(steps: int) -> float:
        due = (steps - 1) // eval_steps - done // eval_steps + 1  # at multiples of eval_steps, and the last step
        return (steps - done) * pace + due * deadline.measured_eval

    low, high = done + 1, max(done + 1, ceiling)
    while low < high:  # the largest step count that fits: what it needs grows with it
        middle = (low + high + 1) // 2
        low, high = (middle, high) if needs(middle) <= room else (low, middle - 1)
    return low


def epochs_for(steps: int, steps_per_epoch: int) -> float:
    """The epochs setting that FineTune turns back into exactly `steps` (it counts ceil(epochs x steps/epoch))."""
    epochs = round((steps - 0.5) / steps_per_epoch, 4)
    return epochs if math.ceil(epochs * steps_per_epoch) == steps else (steps - 0.5) / steps_per_epoch
