"""`i2i eval` as a library call: one request, the figures it asks for, written where it asks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from i2i.errors import ConfigError
from i2i.io import atomic_write_bytes, write_image
from i2i.outputs import refuse_writing_inputs


@dataclass
class EvalRequest:
    """What to score GENERATED with: REAL images (FD, KID, artifacts; MiFID with train_real),
    labelled target images (label preservation; transfer: classifiers trained on GENERATED)."""

    generated: Path
    real: Path | None = None
    train_real: Path | None = None
    extractor: str = "efficientnet-lite0"
    target_train: Path | None = None
    target_test: Path | None = None
    sources: Path | None = None
    judges: int = 1
    transfer: bool = False
    label_channels: int = 1
    device: str = "cpu"
    json_path: Path | None = None
    sheet: Path | None = None


def run_eval(request: EvalRequest, note=print) -> dict:
    """The figures `request` asks for; the contact sheet first (a glance before the metrics'
    minutes) and the JSON last. `note` receives what the user should see on the way."""
    r = request
    if (r.target_train is not None or r.transfer) and r.target_test is None:
        raise ConfigError("label preservation and --transfer need --target-test (real labelled target images held out)")
    from i2i.evaluation.visualize import check_sheet_path, contact_sheet

    read = [
        folder for folder in (r.generated, r.real, r.train_real, r.target_train, r.target_test, r.sources) if folder
    ]
    written = [path for path in (r.json_path, r.sheet) if path]
    refuse_writing_inputs(written, [file for folder in read for file in (folder, *Path(folder).rglob("*"))])
    if r.sheet is not None:
        check_sheet_path(r.sheet, read)
        write_image(r.sheet, contact_sheet(r.generated, r.sources))
        note(f"contact sheet: {r.sheet}")
    result: dict = {}
    if r.real is not None:
        from i2i.evaluation.evaluate import evaluate_folders
        from i2i.evaluation.metrics import resolution_warning, small_sample_warning

        result |= evaluate_folders(r.generated, r.real, r.train_real, r.extractor, r.device, sources=r.sources)
        for warning in (small_sample_warning(result), resolution_warning(result)):
            if warning:
                note(warning)
    judging = {"judges": r.judges, "channels": r.label_channels}
    if r.target_train is not None:
        from i2i.evaluation.label_preservation import label_preservation

        result |= label_preservation(r.generated, r.target_train, r.target_test, r.sources, **judging)
    if r.transfer:
        from i2i.evaluation.label_preservation import synthetic_data_transfer

        result |= synthetic_data_transfer(r.generated, r.target_test, r.sources, **judging)
    if not result and r.sheet is None:
        raise ConfigError(
            "give REAL images to compare with, --target-train/--target-test for label preservation, "
            "or --transfer with --target-test, or --sheet PATH"
        )
    if r.json_path:
        atomic_write_bytes(r.json_path, (json.dumps(result, indent=2) + "\n").encode())
    return result
