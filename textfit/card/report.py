"""`textfit report OUTPUT_DIR`: what a finished run found, again, and the card as one self-contained HTML page.

The page inlines the pictures as data URIs, so it can be mailed or attached to a ticket as a single file.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from textfit.errors import ModelError
from textfit.findings import kept_words
from textfit.run_folder import RunFolder

STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem}img{max-width:100%}
code{background:#f3f3f3;padding:0 .2rem}"""


def report_lines(folder: Path) -> list[str]:
    run = RunFolder.load(folder)
    saved = run.metrics()
    m, kept = saved["eval"], saved.get("kept")
    lines = [f"{folder}: evaluated on {saved.get('eval_split')} ({m['num_examples']:,} examples)"]
    shown = ("loss", "accuracy", "precision", "recall", "f1", "f1_micro", "f1_macro", "subset_accuracy", "threshold",
             "mae", "spearman")  # single-label, multi-label, regression
    lines.append("  " + "  ".join(f"{k} {m[k]:.4f}" for k in shown if k in m))
    if "accuracy_ci" in m:
        lines.append(f"  95% intervals: accuracy {m['accuracy_ci'][0]:.4f}-{m['accuracy_ci'][1]:.4f}, "
                     f"f1 {m['f1_ci'][0]:.4f}-{m['f1_ci'][1]:.4f}; calibration error {m['ece']:.4f}")
    if kept:
        lines.append(f"  kept: step {kept['step']} (epoch {kept['epoch']:g}), {kept_words(kept)}")
    lines += [f"data warning: {w}" for w in saved.get("data_warnings", [])]
    lines += [f"finding: {f}" for f in saved.get("findings", [])]
    if not saved.get("findings"):
        lines.append("no findings: the evaluation history shows no overfitting, divergence or stalled learning")
    errors = run.errors_file()
    if errors is not None:
        count = sum(1 for _ in errors.open(encoding="utf-8"))
        lines.append(f"{count:,} misclassified evaluation examples in {errors}, the most confident first")
    return lines


def card_html(folder: Path) -> str:
    from markdown_it import MarkdownIt

    card = RunFolder.load(folder).card()
    if card is None:
        raise ModelError(f"{folder}: no model card (README.md); pass the output folder of a finished run")
    body = re.sub(r"\A---\n.*?\n---\n", "", card, flags=re.S)  # the Hub metadata block is for machines
    rendered = MarkdownIt("commonmark").enable("table").render(body)

    def inline(match: re.Match) -> str:
        path = folder / html.unescape(match.group(1))
        if not path.is_file() or path.suffix.lower() != ".png":
            return match.group(0)
        return f'src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}"'

    rendered = re.sub(r'src="([^"]+)"', inline, rendered)
    title = html.escape(folder.resolve().name)
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"<style>{STYLE}</style></head>\n<body>\n{rendered}</body></html>\n")
