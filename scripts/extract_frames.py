"""Extract JPEG frames from EGTEA Gaze+'s cropped action clips for the `egtea` dataset.

    python scripts/extract_frames.py <clips folder> <data_root>/EGTEA/frames [--short-side 256] [--jobs 4]

Every video file under <clips folder> (searched recursively: *.mp4, *.avi,
*.mkv, *.webm) becomes <out>/<clip name>/img_00001.jpg, img_00002.jpg, ...,
the layout dataset.clip_path="{clip}" and dataset.frame_template="img_{:05d}.jpg"
expect. Frames are resized to a short side of --short-side (0 keeps the size).
Decoding uses the ffmpeg program when it is on PATH, else PyAV (`pip install av`);
with neither, the script stops and says so. Clips whose folder already holds
frames are skipped, so an interrupted extraction can be re-run.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov")
TEMPLATE = "img_{:05d}.jpg"


def find_backend() -> str:
    """'ffmpeg' or 'pyav'; SystemExit with instructions when neither is available."""
    if shutil.which("ffmpeg"):
        return "ffmpeg"
    try:
        import av  # noqa: F401
        return "pyav"
    except ImportError:
        pass
    raise SystemExit("extract_frames: neither the ffmpeg program nor PyAV is available. Install one of them "
                     "(e.g. `apt-get install ffmpeg`, `conda install ffmpeg`, or `pip install av`) and run again.")


def ffmpeg_command(video: Path, out_dir: Path, short_side: int) -> list[str]:
    """The ffmpeg call that writes every frame of `video` as out_dir/img_00001.jpg ... (high JPEG quality)."""
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(video)]
    if short_side > 0:  # scale the shorter side to short_side, keep the aspect ratio (even sizes)
        cmd += ["-vf", f"scale='if(gt(iw,ih),-2,{short_side})':'if(gt(iw,ih),{short_side},-2)'"]
    return cmd + ["-q:v", "2", "-start_number", "1", str(out_dir / "img_%05d.jpg")]


def _extract_pyav(video: Path, out_dir: Path, short_side: int) -> None:
    import av
    import torch
    from torchvision.io import write_jpeg
    from torchvision.transforms.v2.functional import resize

    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0), 1):
            img = torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1).contiguous()
            if short_side > 0:
                img = resize(img, [short_side], antialias=True)
            write_jpeg(img, str(out_dir / TEMPLATE.format(i)), quality=95)


def extract(video: Path, out_root: Path, backend: str, short_side: int) -> str:
    """Extract one clip; returns 'done', 'skipped' (frames already there) or an error line."""
    out_dir = out_root / video.stem
    if out_dir.is_dir() and any(out_dir.glob("img_*.jpg")):
        return "skipped"
    tmp = out_root / f".{video.stem}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if backend == "ffmpeg":
            res = subprocess.run(ffmpeg_command(video, tmp, short_side), capture_output=True, text=True)
            if res.returncode != 0:
                return f"{video}: ffmpeg failed: {res.stderr.strip()[:300]}"
        else:
            _extract_pyav(video, tmp, short_side)
        if not any(tmp.glob("img_*.jpg")):
            return f"{video}: no frames decoded"
        shutil.rmtree(out_dir, ignore_errors=True)
        tmp.rename(out_dir)  # a clip's folder appears only once complete
        return "done"
    except Exception as exc:  # one bad clip must not stop the others
        return f"{video}: {type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("clips", type=Path, help="folder holding the video clips (searched recursively)")
    p.add_argument("out", type=Path, help="output folder, e.g. <data_root>/EGTEA/frames")
    p.add_argument("--short-side", type=int, default=256, help="resize frames to this short side (0: keep)")
    p.add_argument("--jobs", type=int, default=4, help="clips extracted in parallel")
    args = p.parse_args(argv)
    if not args.clips.is_dir():
        raise SystemExit(f"extract_frames: clips folder {args.clips} is missing")
    videos = sorted(v for v in args.clips.rglob("*") if v.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise SystemExit(f"extract_frames: no video files ({', '.join(VIDEO_SUFFIXES)}) under {args.clips}")
    backend = find_backend()
    args.out.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        results = list(pool.map(lambda v: extract(v, args.out, backend, args.short_side), videos))
    errors = [r for r in results if r not in ("done", "skipped")]
    print(f"extract_frames ({backend}): {results.count('done')} extracted, {results.count('skipped')} already "
          f"there, {len(errors)} failed, into {args.out}")
    for e in errors:
        print(e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
