"""Video stylization frame by frame (PyAV), with temporal smoothing against flicker; audio is kept
(cut at the last written frame under ``--max-frames``).

Smoothing blends each stylized frame with the previous output where the *input* did not change:
``out_t = (1 - b w) s_t + b w out_{t-1}`` with ``w = exp(-|c_t - c_{t-1}| / tau)`` per pixel, so static
regions stop shimmering while moving ones follow the new frame (no ghost trails).
The flicker measure is the mean absolute change between consecutive frames, stylized over original.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from impasto.errors import InputError
from impasto.io import atomic_path, capped_size, resize

Stylizer = Callable[[torch.Tensor], torch.Tensor]


def _open(path: Path) -> Any:
    import av

    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a video file")
    if not path.is_file():
        raise InputError(f"{path}: no such video file")
    try:
        container = av.open(str(path))
    except (av.error.InvalidDataError, av.error.FFmpegError, OSError) as exc:
        raise InputError(f"{path}: not a readable video ({exc})") from exc
    if not container.streams.video:
        container.close()
        raise InputError(f"{path}: has no video stream")
    if min(container.streams.video[0].width, container.streams.video[0].height) < 1:
        container.close()
        raise InputError(f"{path}: its video stream declares no frame size")
    return container


def smooth(stylized: torch.Tensor, content: torch.Tensor, prev_out: torch.Tensor | None,
           prev_content: torch.Tensor | None, strength: float = 0.6, tau: float = 0.04) -> torch.Tensor:
    if prev_out is None or prev_content is None or strength <= 0:
        return stylized
    change = (content - prev_content).abs().mean(dim=1, keepdim=True)
    w = strength * torch.exp(-change / tau)
    return (1 - w) * stylized + w * prev_out


def _write_frame(frame: Any, size: tuple[int, int], stylize: Stylizer, smoothing: float,
                 prev: dict[str, torch.Tensor | None], stats: dict[str, list[float]], vout: Any, out: Any) -> None:
    """Stylize one decoded frame, smooth it against the previous output, record flicker, encode it."""
    import av

    # at the stream's declared size: a stream whose frames change size mid-way still smooths frame to frame
    rgb = frame.reformat(width=size[1], height=size[0], format="rgb24").to_ndarray()
    content = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    raw = stylize(content).clamp(0, 1)
    # a --max-size cap shrinks the output: smooth and measure flicker at the output's size
    content = resize(content, (raw.shape[-2], raw.shape[-1]))
    result = smooth(raw, content, prev["out"], prev["content"], smoothing)
    if prev["content"] is not None:
        stats["original"].append(float((content - prev["content"]).abs().mean()))
        stats["raw"].append(float((raw - prev["raw"]).abs().mean()))  # type: ignore[operator]
        stats["smoothed"].append(float((result - prev["out"]).abs().mean()))  # type: ignore[operator]
    prev.update(content=content, raw=raw, out=result)
    arr = (result[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    arr = np.ascontiguousarray(arr[: vout.height, : vout.width])
    for pkt in vout.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
        out.mux(pkt)


def _demuxed(inp: Any, streams: list[Any], src: Path) -> Any:
    """(packet, decoded video frames) in file order; a stream that stops decoding is the input's fault."""
    import av

    try:
        for packet in inp.demux(*streams):
            yield packet, ([] if packet.stream.type == "audio" else packet.decode())
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(f"{src}: not a readable video ({exc})") from exc


def _start(packet: Any) -> float:
    """A packet's start time in seconds (its pts, else its dts)."""
    ts = packet.pts if packet.pts is not None else packet.dts
    return float(ts * packet.time_base)


class _AudioTrack:
    """The source's audio, muxed into ``stream`` as it is demuxed.

    ``--max-frames`` may end the video early, and audio past its last frame would leave players on a frozen
    frame for the rest of the track. So while a cap is set (``hold``), packets that start at or after the video
    written so far are held back until the video's end is known; once it is cut short, only those starting
    before its end are muxed (cut at packet granularity). Without a cap every packet is muxed as it comes."""

    def __init__(self, out: Any, stream: Any, *, hold: bool) -> None:
        self.out, self.stream, self.hold = out, stream, hold
        self.pending: deque[Any] = deque()
        self.end: float | None = None  # seconds: the video's end, once it was cut short

    def _mux(self, packet: Any) -> None:
        packet.stream = self.stream
        self.out.mux(packet)

    def add(self, packet: Any) -> bool:
        """Mux or hold one packet; False once the audio has passed the cut video's end (nothing more to keep)."""
        if packet.dts is None:  # a demuxer's flush packet: nothing to write
            return True
        if self.end is not None:
            if _start(packet) >= self.end:
                return False
            self._mux(packet)
        elif self.hold:
            self.pending.append(packet)
        else:
            self._mux(packet)
        return True

    def written(self, video_end: float) -> None:
        """Mux the held packets that start before ``video_end``: the video reaches them whatever comes next."""
        while self.pending and _start(self.pending[0]) < video_end:
            self._mux(self.pending.popleft())

    def cut(self, video_end: float) -> None:
        """The video ends at ``video_end``: keep the held packets that start before it, drop the rest."""
        self.written(video_end)
        self.pending.clear()
        self.end = video_end

    def close(self) -> None:
        """The video ran to its natural end: the whole audio is kept, held packets included."""
        while self.pending:
            self._mux(self.pending.popleft())


def _transcode(demuxed: Any, write: Callable[[Any, int], None], audio: _AudioTrack | None, rate: Fraction,
               max_frames: int | None) -> int:
    """Feed decoded frames to ``write`` (up to ``max_frames``) and audio packets to ``audio``; returns the count.

    Output frame ``n`` lies at ``n / rate`` after the source's first frame, whose time (not always 0: a
    trimmed clip or an MPEG-TS stream starts later, and the audio packets keep the source's clock) is the
    base; so a capped video ends, and its audio is cut, at ``base + n / rate``. Once cut, demuxing stops as
    soon as the audio is past that end (or at once without audio): the rest is not needed."""
    n, base = 0, None
    for packet, frames in demuxed:
        if packet.stream.type == "audio":
            if audio is not None and not audio.add(packet):
                break
            continue
        for frame in frames:
            if base is None:
                base = float(frame.time) if frame.time is not None else 0.0
            if max_frames is not None and n >= max_frames:
                if audio is None:
                    return n
                audio.cut(base + float(n / rate))
                break
            write(frame, n)
            n += 1
            if audio is not None:
                audio.written(base + float(n / rate))
    if audio is not None:
        audio.close()
    return n


def stylize_video(src: Path, dst: Path, stylize: Stylizer, *, smoothing: float = 0.6, max_frames: int | None = None,
                  max_size: int | None = None, progress: Callable[[int, int], None] | None = None
                  ) -> dict[str, Any]:
    """Write ``dst`` (H.264 + the source's audio); returns frame count and flicker measures.
    ``max_size`` is the stylizer's cap on the long side, so the encoder gets the frames' final size."""
    import av

    if dst.suffix.lower() not in (".mp4", ".mkv", ".mov"):
        raise InputError(f"{dst}: write .mp4, .mkv or .mov")
    if not dst.parent.is_dir():
        raise InputError(f"{dst}: directory {dst.parent} does not exist")
    if dst.exists() and src.exists() and os.path.samefile(src, dst):
        raise InputError(f"{dst}: -o names the input video; give another path")
    inp = _open(src)
    vin = inp.streams.video[0]
    ain = inp.streams.audio[0] if inp.streams.audio else None
    rate = vin.average_rate or Fraction(25, 1)
    total = vin.frames or 0
    stats: dict[str, list[float]] = {"original": [], "raw": [], "smoothed": []}
    prev: dict[str, torch.Tensor | None] = {"content": None, "raw": None, "out": None}
    with atomic_path(dst) as tmp:
        out = av.open(str(tmp), mode="w", format=dst.suffix.lower().lstrip(".").replace("mkv", "matroska"))
        # every stream must exist before the first packet is muxed: the size is the stylizer's, known in advance
        vout = out.add_stream("libx264", rate=rate)
        height, width = capped_size(vin.height, vin.width, max_size)
        vout.width, vout.height = max(2, width // 2 * 2), max(2, height // 2 * 2)
        vout.pix_fmt = "yuv420p"
        aout = out.add_stream_from_template(ain) if ain is not None else None
        audio = _AudioTrack(out, aout, hold=max_frames is not None) if aout is not None else None

        def write(frame: Any, n: int) -> None:
            _write_frame(frame, (vin.height, vin.width), stylize, smoothing, prev, stats, vout, out)
            if progress:
                progress(n + 1, total)

        demuxed = _demuxed(inp, [s for s in (vin, ain) if s is not None], src)
        try:
            n = _transcode(demuxed, write, audio, rate, max_frames)
            for pkt in vout.encode():
                out.mux(pkt)
        finally:
            demuxed.close()  # a capped video stops demuxing early: end it before its container closes
            out.close()
            inp.close()
        if n == 0:
            raise InputError(f"{src}: no frames decoded")
    mean = {k: (sum(v) / len(v) if v else 0.0) for k, v in stats.items()}
    base = mean["original"] or 1e-12
    return {"frames": n, "fps": float(rate), "audio": ain is not None, "output": os.fspath(dst),
            "flicker_original": mean["original"], "flicker_stylized_raw": mean["raw"],
            "flicker_stylized_smoothed": mean["smoothed"], "flicker_ratio_raw": mean["raw"] / base,
            "flicker_ratio_smoothed": mean["smoothed"] / base}
