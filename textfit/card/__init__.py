"""The model card: README.md with Hub metadata, rendered from a Jinja template (template.md.j2).

`render_card(facts)` takes plain data (the run's config, history, kept checkpoint, metrics, counts) so that it
can be golden-tested as a whole without training anything.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

import jinja2
import yaml

from textfit.card.data import CardData
from textfit.task import SINGLE
from textfit.task import get as get_task

TEMPLATE = Path(__file__).with_name("template.md.j2")
HEADLINE = ("loss", "accuracy", "precision", "recall", "f1", "precision_weighted", "recall_weighted", "f1_weighted",
            "subset_accuracy", "f1_micro", "precision_micro", "recall_micro", "f1_macro", "precision_macro",
            "recall_macro", "threshold", "mse", "mae", "pearson", "spearman")  # single, multi-label, regression
FRAMEWORKS = (("textfit", "textfit"), ("Transformers", "transformers"), ("Pytorch", "torch"),
              ("Accelerate", "accelerate"), ("Datasets", "datasets"), ("Tokenizers", "tokenizers"))


def title(key: str) -> str:
    return {"loss": "Loss", "f1": "F1", "mse": "MSE", "mae": "MAE"}.get(key, key.replace("_", " ").title())


def fmt(value: float) -> str:
    return f"{value:.4f}"


def results_rows(history: list[dict[str, Any]], label_names: list[str]) -> tuple[list[str], list[list[str]]]:
    """The Trainer-style results table: Training Loss | Epoch | Step | Validation Loss | metrics..."""
    if not history:
        return [], []
    metric_keys = [k for k in HEADLINE if k != "loss" and k in history[0]]
    header = ["Training Loss", "Epoch", "Step", "Validation Loss", *map(title, metric_keys)]
    rows = [[fmt(r["train_loss"]), f"{r['epoch']:g}", str(r["step"]), fmt(r["loss"]), *(fmt(r[k]) for k in metric_keys)]
            for r in history]
    return header, rows


def framework_versions() -> list[tuple[str, str]]:
    versions = []
    for shown, dist in FRAMEWORKS:
        try:
            versions.append((shown, metadata.version(dist)))
        except metadata.PackageNotFoundError:
            continue
    return versions


def hyperparameters(facts: dict[str, Any]) -> list[tuple[str, Any]]:
    c = facts["config"]
    total_batch = c["train_batch_size"]
    items: list[tuple[str, Any]] = [
        ("learning_rate", f"{c['learning_rate']:g}"),
        ("train_batch_size", total_batch // c["gradient_accumulation_steps"] // facts["processes"]),
        ("eval_batch_size", c["eval_batch_size"]),
        ("seed", c["seed"]),
    ]
    if facts["processes"] > 1:
        items += [("distributed_type", "multi-process (DDP)"), ("num_devices", facts["processes"])]
    if c["gradient_accumulation_steps"] > 1:
        items.append(("gradient_accumulation_steps", c["gradient_accumulation_steps"]))
    if total_batch != items[1][1]:
        items.append(("total_train_batch_size", total_batch))
    betas = f"({c['adam_beta1']},{c['adam_beta2']})"
    items += [
        ("optimizer", f"AdamW with betas={betas} and epsilon={c['adam_epsilon']:g}, "
                      f"weight_decay={c['weight_decay']:g}"),
        ("lr_scheduler_type", c["lr_scheduler_type"]),
    ]
    if head := facts.get("head_learning_rate"):
        items.append(("head_learning_rate", f"{head:g} (the fresh output layer, "
                                            f"{head / c['learning_rate']:g}x the learning rate)"))
    if facts["warmup_steps"]:
        items.append(("lr_scheduler_warmup_steps", facts["warmup_steps"]))
    for key in ("max_train_samples", "max_eval_samples"):
        if c[key]:
            items.append((key, c[key]))
    if c["max_steps"]:
        items.append(("training_steps", c["max_steps"]))
    else:
        items.append(("num_epochs", f"{c['epochs']:g}"))
    mixed = {"bf16": "bf16 autocast (fp32 master weights)", "fp16": "fp16 (Native AMP)", "fp32": "none (fp32)"}
    items += [("mixed_precision_training", mixed[facts["precision"]]), ("max_length", c["max_length"]),
              ("max_grad_norm", c["max_grad_norm"])]
    return items + _what_this_run_added(facts)


def _what_this_run_added(facts: dict[str, Any]) -> list[tuple[str, Any]]:
    """The settings a Trainer card has no line for: early stopping, class weights, frozen or trimmed embeddings,
    and which evaluation was kept and why."""
    c = facts["config"]
    items: list[tuple[str, Any]] = []
    if c["early_stopping_patience"]:
        items.append(("early_stopping_patience", c["early_stopping_patience"]))
    if facts.get("class_weights"):
        weights = ", ".join(f"{name} {w:.3g}" for name, w in zip(facts["label_names"], facts["class_weights"],
                                                                   strict=True))
        items.append(("class_weights", f"{c['class_weights']} ({weights}), in the training loss"))
    if c.get("freeze_embeddings"):
        items.append(("frozen", "word embeddings (not trained)"))
    if facts.get("vocab_note"):
        items.append(("vocabulary", facts["vocab_note"]))
    if c.get("windows"):
        items.append(("windows", f"long texts read whole when evaluating and predicting (windows of "
                                 f"{c['max_length']} tokens, half a window apart, scores averaged; "
                                 "transformers.pipeline truncates at max_length instead)"))
    kept = facts.get("kept") or {}
    best = kept.get("metric") or c["metric_for_best"]  # auto, as the run resolved it
    best = "validation loss" if best == "loss" else f"validation {best}"
    items.append(("metric_for_best_model", f"the last evaluation (auto; {best} while training)"
                  if kept.get("rule") == "last" else best))
    return items


def intervals_sentence(metrics: dict[str, Any]) -> str:
    if "accuracy_ci" not in metrics:
        return ""
    (a_lo, a_hi), (f_lo, f_hi) = metrics["accuracy_ci"], metrics["f1_ci"]
    return (f"95% bootstrap confidence intervals ({metrics['num_examples']:,} evaluation examples resampled 1,000 "
            f"times): accuracy {a_lo:.4f} to {a_hi:.4f}, F1 {f_lo:.4f} to {f_hi:.4f}. Expected calibration error "
            f"{metrics['ece']:.4f} (0 when the model's confidence matches its accuracy).")


def kept_sentence(facts: dict[str, Any]) -> str:
    kept, history = facts["kept"], facts["history"]
    stopped = (f" Training stopped early: {facts['stop_reason']}." if facts.get("stop_reason") else
               " Training stopped early." if facts.get("stopped_early") else "")
    if not kept or not history:
        return "The model is the final state of training." + stopped
    metric = "validation loss" if kept["metric"] == "loss" else f"validation {kept['metric']}"
    where = f"step {kept['step']} (epoch {kept['epoch']:g})"
    if kept.get("rule") == "last":  # metric_for_best auto, in a run that trained to its end
        return (f"The model kept is the last of {len(history)} evaluations, {where} ({metric} {kept['value']:.4f}): "
                "the run trained to the end of its schedule. In textfit's checkpoint-choice benchmark (4 data sets, "
                "3 seeds each) the last evaluation kept 0.6433 of test accuracy on average, the best validation "
                "metric 0.6418 (a difference within the seeds' noise) and the lowest validation loss 0.6343." + stopped)
    text = (f"The model kept is the checkpoint of {where}, the best {metric} ({kept['value']:.4f}) "
            f"among {len(history)} evaluations")
    if history[-1]["step"] == kept["step"]:
        text += ", which was also the last."
    else:
        text += f"; training ran on to step {history[-1]['step']} without beating it."
    return text + stopped


def metadata_block(facts: dict[str, Any], model_name: str) -> str:
    m = facts["metrics"]
    metrics = [{"name": title(k), "type": k, "value": round(m[k], 4)} for k in HEADLINE
               if k in m and k not in ("loss", "threshold")]
    data: dict[str, Any] = {"library_name": "transformers"}
    if facts.get("license"):
        data["license"] = facts["license"]
    data.update({
        "base_model": facts["base_model"],
        "tags": ["text-classification", "textfit"],
        "datasets": [facts["dataset"]],
        "metrics": [k for k in ("accuracy", "precision", "recall", "f1", "mse", "mae", "pearson", "spearman")
                    if k in m or f"{k}_micro" in m],
        "pipeline_tag": "text-classification",
        "model-index": [{"name": model_name, "results": [{
            "task": {"type": "text-classification", "name": "Text Classification"},
            "dataset": {"name": facts["dataset"], "type": facts["dataset"], "split": facts["eval_split"]},
            "metrics": metrics,
        }]}],
    })
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def render_card(card: CardData | dict[str, Any], model_name: str | None = None) -> str:
    """The card as Markdown; takes the typed CardData, or the same fields as a mapping (the golden test's)."""
    facts = card.as_facts() if isinstance(card, CardData) else card
    config = facts["config"]
    model_name = model_name or Path(config["output_dir"]).name
    metrics = facts["metrics"]
    header, rows = results_rows(facts["history"], facts["label_names"])
    base = facts["base_model"]
    run_task = get_task(facts.get("task") or SINGLE)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE.parent), keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined, autoescape=False)
    return env.get_template(TEMPLATE.name).render(
        metadata=metadata_block(facts, model_name), model_name=model_name, base_model=base,
        base_model_url=f"https://huggingface.co/{base}" if "/" in base and not Path(base).exists() else base,
        dataset=facts["dataset"], eval_split=facts["eval_split"], eval_size=metrics["num_examples"],
        train_size=facts.get("train_size", sum(facts["train_counts"].values())),
        multi_label=run_task.label_sets, regression=not run_task.has_classes, targets=facts.get("targets"),
        threshold=f"{metrics['threshold']:g}" if "threshold" in metrics else None,
        per_label_thresholds="thresholds" in metrics,
        baseline=facts.get("baseline"), distillation=facts.get("distillation"), plan=facts.get("plan"),
        headline=[(title(k), fmt(metrics[k])) for k in HEADLINE if k in metrics],
        kept_sentence=kept_sentence(facts), intervals=intervals_sentence(metrics),
        findings=facts.get("findings") or [], data_warnings=facts.get("data_warnings") or [],
        pictures=facts.get("pictures") or [], mistakes=facts.get("mistakes") or [],
        mistake_count=facts.get("mistake_count", 0),
        architecture=facts.get("architecture", "BertForSequenceClassification"),
        label_names=facts["label_names"], config=config, train_counts=facts["train_counts"],
        eval_counts=facts["eval_counts"], hyperparameters=hyperparameters(facts),
        results_header=header, results_rows=rows,
        per_class=[(n, {k: (fmt(v) if isinstance(v, float) else v) for k, v in c.items()})
                   for n, c in metrics.get("per_class", {}).items()],
        per_language=[(lang, {k: (fmt(v) if isinstance(v, float) else v) for k, v in m.items()})
                      for lang, m in metrics.get("per_language", {}).items()],
        confusion_matrix=metrics.get("confusion_matrix"),
        versions=facts.get("versions") or framework_versions(),
    )
