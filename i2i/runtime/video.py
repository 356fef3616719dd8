"""Stylize a video (or a folder of frames) frame by frame, streaming, optionally kept
temporally consistent (runtime/temporal.py), and measure its temporal consistency
(evaluation/flicker.py). Memory does not grow with the video: frames stream through in small batches.
"""

from __future__ import annotations

import functools
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np
from tqdm import tqdm

from i2i.errors import ConfigError, DataError, WriteError
from i2i.evaluation.flicker import InputMotion, blending_flow, flicker, measuring_flow, warping_error
from i2i.image import to_channels
from i2i.io import (
    DEFAULT_MAX_PIXELS,
    atomic_write_bytes,
    check_name_lengths,
    count_video_frames,
    list_images,
    open_video,
    read_image,
    reporting_write_errors,
    temporary_prefix,
)
from i2i.outputs import claim_folder, refuse_writing_inputs

from .pipeline import WriteBehind, read_ahead
from .predictor import Predictor
from .temporal import SCENE_CUT, TEMPORAL_MODES, make_blender

__all__ = ["TEMPORAL_MODES", "FrameSource", "VideoReport", "stylize_video"]


@dataclass
class VideoReport:
    frames: int = 0
    fps: float = 0.0
    seconds: float = 0.0
    truncated_at: int | None = None  # a video file whose decoding stopped before its container's frame count
    expected: int = 0  # frames the container or folder announces
    skipped: list[str] = field(default_factory=list)  # frames left out, one reason each
    temporal: str = "none"
    seconds_temporal: float = 0.0  # spent in the temporal mode (forecast, flow, blend)
    seconds_measuring: float = 0.0  # spent measuring for --report, left out of the frame rates
    # per pair of consecutive frames, for the output and for the per-frame baseline G(x_t):
    warping_error: list[float] = field(default_factory=list)  # Lai et al.'s E_warp (evaluation/flicker.py)
    warping_error_per_frame: list[float] = field(default_factory=list)
    flicker: list[float] = field(default_factory=list)  # i2i's earlier figure (grey levels)
    flicker_per_frame: list[float] = field(default_factory=list)
    deviation: list[float] = field(default_factory=list)  # mean |output − per-frame output|, per frame
    audio: str = "none"
    padded: str = ""  # "33x17 → 34x18" when odd-sized frames were padded for an even-sized format

    def summary(self) -> dict:
        mean = lambda values: float(np.mean(values)) if values else 0.0  # noqa: E731
        rate = lambda seconds: self.frames / seconds if seconds > 0 else 0.0  # noqa: E731
        working = self.seconds - self.seconds_measuring
        figures = {}
        for name in ("warping_error", "flicker"):
            out, base = mean(getattr(self, name)), mean(getattr(self, f"{name}_per_frame"))
            figures |= {
                name: out,
                f"{name}_per_frame_baseline": base,
                f"{name}_reduction": 1 - out / base if base else 0.0,
            }
        return {
            "frames": self.frames,
            "frames_per_second": rate(working),
            # the same run without the temporal mode's work: an estimate of plain per-frame translation
            "frames_per_second_per_frame_baseline": rate(working - self.seconds_temporal),
            "temporal": self.temporal,
            **figures,
            "mean_deviation_from_per_frame": mean(self.deviation),
            "truncated_at": self.truncated_at,
            "skipped_frames": len(self.skipped),
            "damage": self.damage(),
            "audio": self.audio,
        }

    def damage(self) -> str | None:
        """One line on what of the input could not be translated, or None."""
        parts = []
        if self.truncated_at is not None:
            parts.append(
                f"decoding stopped at frame {self.truncated_at} of the {self.expected} announced (truncated or "
                "corrupt file); the frames before it were translated"
            )
        if self.skipped:
            parts.append(f"{len(self.skipped)} frame(s) skipped (first: {self.skipped[0]})")
        return "; ".join(parts) or None

    def describe(self) -> str:
        """One line: frames, time and rate; with the measurements, both metrics against the per-frame baseline."""
        summary = self.summary()
        line = f"{self.frames} frames in {self.seconds:.1f} s ({summary['frames_per_second']:.1f} frames/s"
        if self.padded:
            line = f"{line}; frames padded {self.padded}: this video format takes even sizes (.avi keeps any)"
        if not self.deviation:
            return line + ")"
        return line + (
            f", per-frame {summary['frames_per_second_per_frame_baseline']:.1f}); warping error "
            f"{summary['warping_error']:.5f} vs per-frame {summary['warping_error_per_frame_baseline']:.5f} "
            f"({100 * summary['warping_error_reduction']:.0f} % lower), flicker {summary['flicker']:.2f} vs "
            f"{summary['flicker_per_frame_baseline']:.2f} ({100 * summary['flicker_reduction']:.0f} % lower), "
            f"deviation {summary['mean_deviation_from_per_frame']:.2f}"
        )


class FrameSource:
    """Frames of a video file or a folder of images, streamed in order, as uint8 HWC, all of the
    first frame's size. A frame that does not decode or has another size is skipped and noted in
    `skipped`; a video file whose decoder stops early ends there (see `VideoReport.damage`)."""

    def __init__(self, path: Path, channels: int, max_pixels: int = DEFAULT_MAX_PIXELS):
        self.path, self.channels, self.max_pixels = Path(path), channels, max_pixels
        self.skipped: list[str] = []
        if self.path.is_dir():
            self.frames = list_images(self.path)
            if not self.frames:
                raise DataError(f"{self.path}: no frames (images) in this folder")
            self.fps, self.expected = 25.0, len(self.frames)
            return
        if not self.path.is_file():
            raise DataError(f"{self.path}: no such video file or frame folder")
        capture = open_video(self.path, max_pixels)  # refuses a frame size above max_pixels before decoding
        self.frames = None
        # Variable frame rate videos report their average rate: the output plays at that rate.
        self.fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        self.expected = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        capture.release()

    def __iter__(self) -> Iterator[np.ndarray]:
        size = None
        for index, frame in enumerate(self._decoded()):
            if isinstance(frame, DataError):
                self.skipped.append(f"frame {index}: {frame}")
                continue
            if size is None:
                size = frame.shape[:2]
            if frame.shape[:2] != size:
                self.skipped.append(
                    f"frame {index}: {frame.shape[1]}x{frame.shape[0]}, not the first frame's {size[1]}x{size[0]}"
                )
                continue
            yield frame

    def _decoded(self) -> Iterator[np.ndarray | DataError]:
        if self.frames is not None:
            for path in self.frames:
                try:
                    yield read_image(path, self.channels, self.max_pixels)
                except DataError as error:
                    yield error
            return
        capture = open_video(self.path, self.max_pixels)
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    return
                rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                yield to_channels(rgb, self.channels)
        finally:
            capture.release()


class TemporalStep:
    """One translated frame through the temporal mode (timed), measured against the previous one
    when reporting. The input's motion is estimated lazily, at most once per pair and flow
    (by `estimate`): Farnebäck's when the mode needs it, DIS's when measuring (evaluation/flicker.py
    says why the metrics use another flow than the modes)."""

    def __init__(self, blender, result: VideoReport, report: bool, estimate=InputMotion.estimate):
        self.blender, self.result, self.report, self.estimate = blender, result, report, estimate
        self.previous: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # input, output, per-frame output

    def __call__(self, frame: np.ndarray, styled: np.ndarray) -> np.ndarray:
        previous, result = self.previous, self.result
        motion = functools.cache(lambda: self.estimate(previous[0], frame, blending_flow))
        started = time.perf_counter()
        out = self.blender(frame, styled, motion) if self.blender else styled
        result.seconds_temporal += time.perf_counter() - started
        if self.report and previous is not None:
            started = time.perf_counter()
            measured = self.estimate(previous[0], frame, measuring_flow)
            for name, measure in (("warping_error", warping_error), ("flicker", flicker)):
                getattr(result, name).append(measure(measured, previous[1], out))
                getattr(result, f"{name}_per_frame").append(measure(measured, previous[2], styled))
            result.deviation.append(float(np.abs(out.astype(np.float32) - styled).mean()))
            result.seconds_measuring += time.perf_counter() - started
        self.previous = (frame, out, styled)
        return out


class _Encoder:
    """The output video, opened at its first frame's size; frames are written in order. A format
    that takes even sizes only (_writes_even_sizes_only) gets odd-sized frames padded by repeating
    their edge, so that no pixel is lost; .avi keeps any size."""

    def __init__(self, path: Path, fps: float):
        self.path, self.fps = path, fps
        self.writer = None
        self.size, self.pad = (0, 0), (0, 0)

    def open(self, frame: np.ndarray) -> None:
        if self.writer is None:
            height, width = self.size = frame.shape[:2]
            if _writes_even_sizes_only(self.path):
                self.pad = (height % 2, width % 2)
            self.writer = _writer(self.path, self.fps, (width + self.pad[1], height + self.pad[0]))

    def padding(self) -> str:
        (height, width), (down, right) = self.size, self.pad
        return f"{width}x{height} → {width + right}x{height + down}"

    def write(self, frame: np.ndarray) -> None:
        if any(self.pad):
            frame = np.pad(frame, ((0, self.pad[0]), (0, self.pad[1]), (0, 0)), mode="edge")
        self.writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR if frame.shape[2] == 3 else cv2.COLOR_GRAY2BGR))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


def _batch_sizes(batch_size: int, max_frames: int | None) -> Iterator[int]:
    """How many frames each batch asks for: batch_size, the last ones capped by max_frames."""
    remaining = max_frames
    while remaining is None or remaining > 0:
        count = batch_size if remaining is None else min(batch_size, remaining)
        remaining = None if remaining is None else remaining - count
        yield count


def _taking(stream: Iterator[np.ndarray]) -> Callable[[int], list[np.ndarray]]:
    return lambda count: list(itertools.islice(stream, count))


_MPEG4_SUFFIXES = (".mp4", ".m4v", ".mov")


def _writes_even_sizes_only(path: Path) -> bool:
    """Whether the output's format goes through OpenCV's FFmpeg writer, which drops an odd last row
    and column (its 4:2:0 encoders need even sizes); .avi goes through OpenCV's own MJPEG writer,
    which keeps any size."""
    return path.suffix.lower() != ".avi"


def _writer(path: Path, fps: float, size: tuple[int, int]):
    if _writes_even_sizes_only(path):
        fourcc = "mp4v" if path.suffix.lower() in _MPEG4_SUFFIXES else "MJPG"
        writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*fourcc), fps, size)
    else:
        writer = cv2.VideoWriter(str(path), cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    if not writer.isOpened():
        raise DataError(f"{path}: OpenCV cannot write this video format; use .mp4 or .avi")
    return writer


def stylize_video(
    predictor: Predictor,
    source: Path,
    output: Path,
    temporal: str = "none",
    model: Path | None = None,
    report: bool = False,
    batch_size: int = 4,
    max_frames: int | None = None,
    strength: float | None = None,
    cutoff: float | None = None,
    scene_cut: float = SCENE_CUT,
    device: str = "cpu",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> VideoReport:
    """Write the stylized video to `output` (atomically; audio copied when ffmpeg is present).
    strength/cutoff default to the mode's TEMPORAL_DEFAULTS. The written file is decoded again and
    must hold every frame, or nothing is left under `output` and WriteError says why."""
    if max_frames is not None and max_frames < 1:
        raise ConfigError(f"--max-frames {max_frames}: must be at least 1 (or left out for the whole video)")
    if batch_size < 1:
        raise ConfigError(f"--batch-size {batch_size}: must be at least 1")
    blender = make_blender(temporal, model, predictor, strength, cutoff, scene_cut, device)
    frames = FrameSource(source, predictor.input_channels, max_pixels)
    output = Path(output)
    written = [output, *(report_paths(output) if report else [])]
    check_name_lengths(written)
    if output.is_dir():
        raise DataError(f"{output}: is a folder; give the output video's file name (e.g. {output / 'out.mp4'})")
    if frames.frames is not None and output.resolve().parent.is_relative_to(frames.path.resolve()):
        raise DataError(
            f"{output}: inside the frame folder {frames.path}, whose frames it would join; write it elsewhere"
        )
    inputs = [frames.path, *(frames.frames or []), *([model] if model is not None else [])]
    refuse_writing_inputs(written, inputs)
    with claim_folder(output.parent, f"the video {output.name}"):
        result = VideoReport(fps=frames.fps, temporal=temporal, expected=frames.expected, skipped=frames.skipped)
        started = time.perf_counter()
        total = min(frames.expected or max_frames or 0, max_frames or frames.expected) or None
        with (
            tempfile.TemporaryDirectory(dir=output.parent, prefix=temporary_prefix(output.name), suffix=".tmp") as tmp,
            tqdm(total=total, unit="frame", desc="video", dynamic_ncols=True) as progress,
            WriteBehind(1, "video-encode") as writes,  # one thread: the frames stay in order
        ):
            silent = Path(tmp) / f"video{output.suffix or '.mp4'}"
            encoded = _Encoder(silent, frames.fps)
            step = TemporalStep(blender, result, report)
            stream = iter(frames)
            exhausted = False
            for requested, batch in read_ahead(_batch_sizes(batch_size, max_frames), _taking(stream)):
                exhausted = len(batch) < requested
                if batch:
                    styled = [step(frame, out) for frame, out in zip(batch, predictor(batch))]
                    encoded.open(styled[0])
                    writes.submit([functools.partial(encoded.write, frame) for frame in styled])
                    progress.update(len(batch))
                if exhausted:
                    break
            writes.close()
            encoded.close()
            if any(encoded.pad):
                result.padded = encoded.padding()
            if not writes.written:
                reason = f"; {frames.skipped[0]}" if frames.skipped else ""
                raise DataError(f"{source}: no frame could be decoded (empty or corrupt video{reason})")
            result.frames = writes.written
            decoded = result.frames + len(frames.skipped)
            if exhausted and frames.frames is None and decoded < frames.expected:
                result.truncated_at = decoded
            final = silent
            if shutil.which("ffmpeg") and frames.frames is None:
                muxed = Path(tmp) / f"muxed{silent.suffix}"
                done = subprocess.run(
                    [
                        "ffmpeg",
                        "-v",
                        "error",
                        "-y",
                        "-i",
                        str(silent),
                        "-i",
                        str(source),
                        "-map",
                        "0:v",
                        "-map",
                        "1:a?",
                        "-c",
                        "copy",
                        "-shortest",
                        str(muxed),
                    ],
                    capture_output=True,
                )
                if done.returncode == 0:
                    final, result.audio = muxed, "copied"
            _check_encoded(final, output, result.frames, max_pixels)
            with reporting_write_errors(output):
                final.replace(output)
        result.seconds = time.perf_counter() - started
        if report:
            write_report(result, output)
        return result


def _check_encoded(path: Path, output: Path, frames: int, max_pixels: int) -> None:
    """WriteError unless the encoded file `path` decodes to `frames` frames: OpenCV's writer
    reports no I/O errors, so a full disk would otherwise leave an undecodable video."""
    try:
        written = count_video_frames(path, max_pixels)
    except DataError:
        written = 0
    if written != frames:
        free = shutil.disk_usage(path.parent).free / 1e6
        raise WriteError(
            f"{output}: the encoder wrote {written} of {frames} frames ({free:.0f} MB free on its disk; "
            "a full disk or a file-size limit?); free space or write elsewhere"
        )


def report_paths(output: Path) -> tuple[Path, Path]:
    """The --report files beside `output`: NAME.report.json and NAME.report.png."""
    base = Path(output).with_suffix("")
    return Path(f"{base}.report.json"), Path(f"{base}.report.png")


def write_report(result: VideoReport, output: Path) -> None:
    """OUTPUT.report.json (summary + per-frame series) and OUTPUT.report.png (warping error over time)."""
    from i2i.evaluation.visualize import pyplot, save_figure

    plt = pyplot()
    report_json, report_png = report_paths(output)
    payload = {"summary": result.summary(), **{k: v for k, v in asdict(result).items() if isinstance(v, list)}}
    atomic_write_bytes(report_json, json.dumps(payload, indent=2).encode())
    fig, axis = plt.subplots(figsize=(9, 3.5))
    axis.plot(result.warping_error_per_frame, label="per-frame output", alpha=0.8)
    if result.temporal != "none":
        axis.plot(result.warping_error, label=f"--temporal {result.temporal}", alpha=0.8)
    axis.set_xlabel("frame")
    axis.set_ylabel("warping error (MSE, intensities 0..1)")
    axis.set_title("warping error between consecutive outputs (Lai et al. 2018; DIS flow of the input)")
    axis.legend()
    axis.grid(alpha=0.3)
    save_figure(fig, report_png)
