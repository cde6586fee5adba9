"""Model versions on disk: the configured model is version 1; each promotion writes a new folder
beside the old ones (never over them), records it in SQL and points ``current`` at it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Mapping

from monitor.adaptation.model import (
    AdaptedModel,
    AffineMap,
    EnsembleModel,
    Model,
    ModelLoadError,
    write_manifest,
)
from monitor.config import ModelConfig
from monitor.store.adaptations import AdaptationRecords, StoredModelVersion

#: ``load(path, options) -> Model``, provided through ``driftd_model_loaders``.
Loader = Callable[[Path, Mapping[str, Any]], Model]


class ModelStore:
    """Loads a monitor's active model and writes promoted ones."""

    def __init__(self, records: AdaptationRecords, loaders: Mapping[str, Loader]) -> None:
        self.records = records
        self.loaders = dict(loaders)

    def champion(self, monitor: str, config: ModelConfig) -> tuple[StoredModelVersion, Model]:
        """The active version of the monitor's model, loaded (version 1 is the configured file)."""
        self.records.ensure_first_model(monitor, config.path)
        active = self.records.active_model(monitor)
        assert active is not None
        return active, self.load(active.path, config)

    def load(self, path: str, config: ModelConfig) -> Model:
        """A model from a version folder (with ``manifest.json``) or from the configured file."""
        location = Path(path)
        manifest = location / "manifest.json"
        if manifest.is_file():
            return self._load_version(location, json.loads(manifest.read_text(encoding="utf-8")))
        return self._loader(config.loader)(location, config.options)

    def write(self, monitor: str, config: ModelConfig, model: Model, adaptation_id: int,
              prefix: str = "adaptation") -> Path:
        """Write ``model`` into a new folder ``<prefix>-<id>`` (written beside, then renamed into place); the folder."""
        root = Path(config.store) / monitor
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        folder = root / f"{prefix}-{adaptation_id}"
        partial = root / f".{prefix}-{adaptation_id}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(mode=0o700)
        entry = model.save(partial)
        entry.update({"monitor": monitor, "adaptation_id": adaptation_id, "classes": model.classes.tolist()})
        write_manifest(partial, entry)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(partial, folder)
        return folder.resolve()

    def promote(self, monitor: str, config: ModelConfig, model: Model, adaptation_id: int,
                note: str) -> StoredModelVersion:
        """Write ``model`` into a new folder, record it as the next active version, repoint ``current``."""
        folder = self.write(monitor, config, model, adaptation_id)
        version = self.records.add_model(monitor, str(folder), adaptation_id, note)
        point_current(Path(config.store) / monitor, folder)
        return version

    def repoint(self, monitor: str, config: ModelConfig) -> None:
        """Point ``current`` at the active version recorded in SQL (after a crash between the two)."""
        active = self.records.active_model(monitor)
        if active is not None:
            point_current(Path(config.store) / monitor, Path(active.path))

    def rollback(self, monitor: str, config: ModelConfig | None, to: int | None = None
                 ) -> tuple[StoredModelVersion, StoredModelVersion]:
        """Make an earlier version active again and repoint ``current`` (when the store folder is known)."""
        left, now = self.records.rollback(monitor, to)
        if config is not None:
            point_current(Path(config.store) / monitor, Path(now.path))
        return left, now

    def _load_version(self, folder: Path, manifest: Mapping[str, Any]) -> Model:
        if manifest.get("loader") == "ensemble":
            names = [str(entry["folder"]) for entry in manifest["members"]]
            if any(not name.startswith("member-") or not name[7:].isdigit() for name in names):
                raise ModelLoadError(f"{folder}: ensemble member folders must be named member-<n> (got {names})")
            members = [self._load_version(folder / name, entry) for name, entry in zip(names, manifest["members"])]
            return EnsembleModel(members, manifest["weights"])
        base = self._loader(str(manifest.get("loader")))(folder / str(manifest["file"]), manifest.get("options") or {})
        input_map = AffineMap.from_json(manifest["input_map"]) if manifest.get("input_map") else None
        ratios = manifest.get("prior_ratios")
        if input_map is None and ratios is None:
            return base
        return AdaptedModel(base, input_map, ratios)

    def _loader(self, name: str) -> Loader:
        if name not in self.loaders:
            raise ModelLoadError(f"unknown model loader {name!r} (installed: {', '.join(sorted(self.loaders)) or 'none'})")
        return self.loaders[name]


def point_current(root: Path, target: Path) -> None:
    """Atomically repoint ``root/current`` at ``target`` (a folder or the configured file)."""
    if not root.is_dir():
        return
    temporary = root / ".current.tmp"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(target.resolve())
    os.replace(temporary, root / "current")
