"""`textfit distill TEACHER --layers 2`: a student trained from its teacher's recipe, then the two side by side.

The student's settings are the teacher's recipe (the same data, columns, evaluation set and max_length, so the
two are scored on the same examples), with the output folder, the student's size and any flag given on top. The
training itself is training/distill.py. Afterwards both models are timed on the same evaluation texts with each
backend a user can serve with (PyTorch fp32, bf16 where the CPU has it, the ONNX graph and its int8 version), the
way a user waits: tokenizing included.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from textfit.backends import ONNX_FILES
from textfit.compare import in_words
from textfit.config import TrainConfig
from textfit.errors import ConfigError
from textfit.export import AccuracyDropError, export_onnx
from textfit.io import atomic_write_json
from textfit.precision import resolve_precision
from textfit.predict import Classifier
from textfit.run_folder import RunFolder
from textfit.training import Result, load_data, train

STUDENT_LAYERS = 2  # of MiniLM's 6: about 3x the teacher's texts/s (the embeddings, 12M of 22M, are kept whole)
SPEED_TEXTS = 256  # evaluation texts timed per backend: a few seconds each on 2 cores for IMDB reviews
SPEED_ROUNDS = 3  # passes over them, the median counts: one pass put a 3-layer student ahead of a 2-layer one
CHECK_TEXTS = 1000  # evaluation texts the int8 graph's accuracy is checked on (export's own default): on fewer,
# one text is more than the 1-point limit
RUN_ONLY = ("output_dir", "resume", "overwrite", "keep_checkpoints", "teacher", "layers", "unlabelled")


def student_config(teacher_dir: str | Path, **settings: Any) -> TrainConfig:
    """The teacher's recipe, less what belongs to its own run, with `settings` (non-None) on top."""
    folder = RunFolder.load(teacher_dir)
    inherited = {k: v for k, v in (folder.config or TrainConfig()).to_dict().items() if k not in RUN_ONLY}
    chosen = {k: v for k, v in settings.items() if v is not None}
    layers = chosen.get("layers") or STUDENT_LAYERS
    output = chosen.get("output_dir") or f"{str(teacher_dir).rstrip('/')}-student-{layers}l"
    if Path(output).resolve() == folder.path.resolve():
        raise ConfigError(f"--output-dir {output} is the teacher's own folder; the student needs its own")
    return TrainConfig.from_sources(None, **{**inherited, **chosen, "teacher": str(teacher_dir), "layers": layers,
                                             "output_dir": output})


@dataclass
class Side:
    """One model of the comparison: its size and its speed on each backend (None: not measured, and why)."""

    name: str
    path: str
    layers: int
    weights_mb: float
    texts_per_second: dict[str, float | None] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


def distill(teacher_dir: str | Path, speed_texts: int = SPEED_TEXTS,
            **settings: Any) -> tuple[Result, dict[str, Any], list[Side]]:
    """Train the student, then time both models: (the run, the teacher beside the student as metrics.json has it,
    each model's speed). The comparison is also written to STUDENT/distillation.json."""
    config = student_config(teacher_dir, **settings)
    result = train(config, fixed=[k for k, v in settings.items() if v is not None])  # flags win over a time budget
    report = RunFolder.load(result.output_dir).metrics()["distillation"]
    sides = time_both(teacher_dir, result.output_dir, config, speed_texts) if speed_texts > 0 else []
    atomic_write_json(result.output_dir / "distillation.json",
                      {"report": report, "timed_texts": speed_texts, "cpu_backends": [asdict(s) for s in sides]})
    return result, report, sides


def retime_sides(teacher_dir: str | Path, student_dir: str | Path) -> list[Side]:
    """Time a finished student and its teacher again on the texts its distillation.json says were timed."""
    path = Path(student_dir) / "distillation.json"
    saved = json.loads(path.read_text())
    sides = time_both(teacher_dir, student_dir, RunFolder.read_config(student_dir), saved["timed_texts"])
    atomic_write_json(path, {**saved, "cpu_backends": [asdict(s) for s in sides]})
    return sides


def time_both(teacher_dir: str | Path, student_dir: str | Path, config: TrainConfig, texts: int) -> list[Side]:
    """The teacher and the student timed on the same first `texts` evaluation texts of the student's data."""
    timed = [ex.text for ex in load_data(config).eval[:texts]]
    return [timed_side("teacher", Path(teacher_dir), timed, config.dataset),
            timed_side("student", Path(student_dir), timed, config.dataset)]


def timed_side(name: str, folder: Path, texts: list[str], dataset: str | None) -> Side:
    """Texts/s of one folder on each backend. A folder without ONNX graphs is exported in a copy (the teacher's
    own folder is left as it was); the student's graphs are written in its folder, ready for `serve`."""
    side = Side(name, str(folder), _layers(folder), round((folder / "model.safetensors").stat().st_size / 2**20, 1))
    with tempfile.TemporaryDirectory(prefix="textfit-distill-") as scratch:
        graphs = folder if name == "student" else Path(scratch) / folder.name
        if graphs != folder:
            shutil.copytree(folder, graphs, ignore=shutil.ignore_patterns("checkpoints", "*.onnx"))
        try:
            export_onnx(graphs, quantize="int8", dataset=dataset, max_samples=max(len(texts), CHECK_TEXTS))
        except AccuracyDropError as exc:
            side.notes["onnxruntime-int8"] = str(exc)
        variants = [("torch", "fp32"), ("onnx", "fp32"), ("int8", "fp32")]
        if resolve_precision("auto")[0] == "bf16":
            variants.insert(1, ("torch", "bf16"))
        for backend, precision in variants:
            if backend != "torch" and not (graphs / ONNX_FILES[backend]).is_file():
                continue
            clf = Classifier(graphs, backend=backend, precision=precision)
            side.texts_per_second[clf.backend.name] = texts_per_second(clf, texts)
    return side


def texts_per_second(clf: Classifier, texts: list[str], rounds: int = SPEED_ROUNDS) -> float:
    """Tokenizing and batching included, after one warm-up batch; the median of `rounds` passes."""
    clf.predict_proba(texts[:clf.batch_size])
    seconds = []
    for _ in range(rounds):
        start = time.perf_counter()
        clf.predict_proba(texts)
        seconds.append(time.perf_counter() - start)
    return round(len(texts) / statistics.median(seconds), 1)


def _layers(folder: Path) -> int:
    from transformers import AutoConfig

    return int(AutoConfig.from_pretrained(folder).num_hidden_layers)


def comparison_lines(report: dict[str, Any] | None, sides: list[Side]) -> list[str]:
    """The teacher and the student side by side, as `textfit distill` prints them."""
    lines = []
    if report:
        def with_ci(value: float, ci: list[float] | None) -> str:
            return f"{value:.4f}" + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "")

        lines += [f"{'':<26} {'teacher':>24} {'student':>24}",
                  f"{'layers':<26} {report['teacher_layers']:>24} {report['student_layers']:>24}",
                  f"{report['metric']:<26} {with_ci(report['teacher_value'], report['teacher_ci']):>24} "
                  f"{with_ci(report['student_value'], report['student_ci']):>24}"]
        agreement = (f"{report['agreement']:.1%}" if report["agreement_kind"] == "same answers"
                     else f"{report['agreement']:.4f}")
        lines.append(f"{report['agreement_kind']:<26} {'':>24} {agreement:>24}")
        if "difference" in report:  # folders written before it was measured have no difference
            difference = in_words(report["metric"], report["difference"], report["difference_ci"])
            lines.append(f"student - teacher: {difference}")
    if len(sides) == 2:
        teacher, student = sides
        lines.append(f"{'weights (MB)':<26} {teacher.weights_mb:>24} {student.weights_mb:>24}")
        for backend, speed in teacher.texts_per_second.items():
            mine = student.texts_per_second.get(backend)
            ratio = f" ({mine / speed:.2f}x)" if mine and speed else ""
            lines.append(f"{backend + ' texts/s':<26} {speed or '-':>24} {str(mine or '-') + ratio:>24}")
        lines += [f"note: {side.name} {backend}: {note}" for side in sides for backend, note in side.notes.items()]
    return lines
