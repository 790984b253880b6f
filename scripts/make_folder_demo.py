"""Write a folder of MNIST digits as PNG files, the layout `dataset=folder` reads (docs/own-data.md).

    python scripts/make_folder_demo.py OUT [--digits 0-9] [--head-train 500] [--imbalance 100] [--val 20] [--test 100]

OUT/train/<digit>/*.png, OUT/val/<digit>/*.png (unless --val 0) and
OUT/test/<digit>/*.png, 28x28 grayscale. Training
images per digit follow the long-tailed profile floor(head_train * mu**r),
mu = (1/imbalance)**(1/(C-1)), with the LAST digit listed as the largest
class (rank 0), so the head is not the alphabetically first folder. Images are
drawn at random (--seed) from the MNIST training (train, val: disjoint) and test splits under
CDB_DATA_ROOT (or --data-root); nothing is downloaded.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from cdb.data.longtail import longtail_counts  # noqa: E402
from cdb.data.mnist import load_mnist  # noqa: E402


def digits(spec: str) -> list[int]:
    if "-" in spec:
        lo, hi = spec.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(d) for d in spec.split(",")]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--digits", default="0-9", help="0-9, or a list such as 4,9")
    p.add_argument("--head-train", type=int, default=500, help="training images of the largest class")
    p.add_argument("--imbalance", type=float, default=100, help="largest / smallest training class (1: balanced)")
    p.add_argument("--val", type=int, default=20, help="validation images per digit (0: no val/ folder)")
    p.add_argument("--test", type=int, default=100, help="test images per digit")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", default=os.environ.get("CDB_DATA_ROOT", "data"))
    args = p.parse_args(argv)
    ds = digits(args.digits)
    counts = dict(zip(reversed(ds), longtail_counts(args.head_train, len(ds), args.imbalance)))
    data = load_mnist(args.data_root)
    g = torch.Generator().manual_seed(args.seed)
    for train in (True, False):
        x, y = data[train]
        for d in ds:
            idx = torch.nonzero(y == d).flatten()
            idx = idx[torch.randperm(len(idx), generator=g)]
            sizes = {"train": counts[d], "val": args.val} if train else {"test": args.test}
            for split, n in sizes.items():
                folder = args.out / split / str(d)
                folder.mkdir(parents=True, exist_ok=True) if n else None
                for i in idx[:n].tolist():
                    Image.fromarray(x[i].numpy(), mode="L").save(folder / f"{i:05d}.png")
                idx = idx[n:]
    print(f"{args.out}: train {sum(counts.values())} images ({', '.join(f'{d}: {counts[d]}' for d in ds)}), "
          f"val {args.val} and test {args.test} per digit")


if __name__ == "__main__":
    main()
