"""The own-data study (docs/own-data.md): real long-tailed folders built from MNIST, trained with the
`dataset=folder` recipe, every method side by side, and the folder defaults chosen on validation.

    python studies/own_data/own_data_study.py folders          # write the folders (PNG, the layout dataset=folder reads)
    python studies/own_data/own_data_study.py pair-lines       # cdb-run lines: CE on a balanced 10-digit folder (seeds 0-2)
    python studies/own_data/own_data_study.py pairs            # rank digit pairs by how often those runs confuse them
    python studies/own_data/own_data_study.py lines            # cdb-run lines of the study, one run per line
    python studies/own_data/own_data_study.py tables           # cdb-table compare per folder + the validation selection table
    python studies/own_data/own_data_study.py holdout          # last vs best checkpoint on a second validation set (holdout)

`make own-data-study` runs them in this order (resume=true: run it again to continue; finished runs are only
reported). A long real-data run (about an hour of one core): not part of `make test`.

The folders (under --folders, default $CDB_OUTPUT_ROOT/own_data_folders), from real MNIST under CDB_DATA_ROOT:
  rank10     digits 0-9, 1000 training images each (balanced), 20 validation, 800 "test" images drawn from the
             MNIST *training* split (disjoint from the others): only to choose the hard pairs, so that choice never
             looks at the test images the study reports
  lt10       digits 0-9 long-tailed at imbalance 100, 9 the largest class (5000) down to 0 (50), 20 validation and
             800 test images per digit (MNIST test split)
  pair_A_B   two digits at 99:1 (B: 4950 training images, A: 50: MNIST 4/9's sizes at r = 0.99), 20 validation
             and 800 test images per digit; the pairs are PAIRS, the most-confused pairs other than 4/9 by `pairs`
Validation images (20 per class: dataset.val_per_class's default) come from a val/ folder, so every method sees
the same ones. Beside each study folder, <folder>_holdout/<digit>/ holds HOLDOUT more MNIST training images per digit
in none of its splits: a second validation set on which `holdout` compares the last and best-validation checkpoints
(the validation split chose `best`, so it cannot compare them without bias). The test split is read only for
reporting (the compare tables), never to choose.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from cdb.data.longtail import longtail_counts  # noqa: E402
from cdb.data.mnist import load_mnist  # noqa: E402

OUT = Path(os.environ.get("CDB_OUTPUT_ROOT", "outputs"))
NAME = "own_data_study"            # run directories: OUT/own_data_study/<overrides>/seed=<n>
RANK_NAME = "own_data_pairs"       # the pair-ranking runs: OUT/own_data_pairs/...
SEEDS = (0, 1, 2)
VAL, TEST = 20, 800
HOLDOUT = 300   # more held-out MNIST training images per digit: a second validation set (not the test split)
# Chosen by `pairs` (results/own_data_study/pairs.md): the most-confused digit pairs of LeNet-5 on balanced MNIST,
# 4/9 (the paper's pair, first with 38 confusions) left out: 3/9 (25), then 2/7 (22; tied with 2/3, which shares
# digit 3 with 3/9, so 2/7 was taken). Minority first: the larger digit is the 99 % class.
PAIRS = ((3, 9), (2, 7))
# (row name, cdb-run loss overrides): every method of the study. The loss=cdb rows name every setting a folder default
# of loss=cdb may set (configs/dataset_loss/folder_cdb.yaml), so they train the same runs whatever that default is.
PIN = "loss.warmup=0 loss.floor=0"
METHODS = {
    "ce": "loss=ce",
    "ifw": "loss=ifw",
    "cb": "loss=cb",
    "balanced_softmax": "loss=balanced_softmax",
    "cdb": f"loss=cdb loss.tau=dynamic loss.tau_rule=paper {PIN}",
    "cdb_authors": f"loss=cdb loss.tau=dynamic loss.tau_rule=authors_sigmoid {PIN}",
    "cdb_tau1": f"loss=cdb loss.tau=1 {PIN}",
    "cdb_stabilised": "loss=cdb_stabilised",
}
COMMON = "threads=1 resume=true trainer.progress=false"


def folders() -> dict[str, dict]:
    """Every folder of the study: digits (head last), training images per digit, where its test images come from."""
    out = {"rank10": {"digits": list(range(10)), "train": [1000] * 10, "test_from_train": True},
           "lt10": {"digits": list(range(10)), "train": longtail_counts(5000, 10, 100)[::-1],
                    "test_from_train": False}}
    for a, b in PAIRS:
        out[f"pair_{a}_{b}"] = {"digits": [a, b], "train": longtail_counts(4950, 2, 99)[::-1], "test_from_train": False}
    return out


def draws(spec: dict, data: dict, seed: int = 0):
    """(digit, {split: (images, indices)}) of one folder: train, val, test and a holdout of HOLDOUT more MNIST
    training images per digit, disjoint from that folder's train and val (for folders whose test comes from the
    MNIST test split). The draws (and so the folders) depend on `seed` only."""
    g = torch.Generator().manual_seed(seed)
    x, y = data[True]
    xt, yt = data[False]
    for d, n in zip(spec["digits"], spec["train"]):
        idx = torch.nonzero(y == d).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        parts = {"train": (x, idx[:n]), "val": (x, idx[n:n + VAL])}
        if spec["test_from_train"]:
            parts["test"] = (x, idx[n + VAL:n + VAL + TEST])
        else:
            tidx = torch.nonzero(yt == d).flatten()
            parts["test"] = (xt, tidx[torch.randperm(len(tidx), generator=g)][:TEST])
            parts["holdout"] = (x, idx[n + VAL:n + VAL + HOLDOUT])
        yield d, parts


def write_folder(root: Path, spec: dict, data: dict, seed: int = 0) -> str:
    """root/{train,val,test}/<digit>/*.png from MNIST, and root_holdout/<digit>/*.png beside it (not a split the
    runs see); returns a one-line summary. An existing folder is kept."""
    have = (root / "train").is_dir()
    if have and (spec["test_from_train"] or holdout_dir(root).is_dir()):
        return f"{root}: exists, kept"
    for d, parts in draws(spec, data, seed):
        for split, (images, chosen) in parts.items():
            if have and split != "holdout":   # an existing folder is kept; only its missing holdout is written
                continue
            folder = (holdout_dir(root) if split == "holdout" else root / split) / str(d)
            folder.mkdir(parents=True, exist_ok=True)
            for i in chosen.tolist():
                Image.fromarray(images[i].numpy(), mode="L").save(folder / f"{i:05d}.png")
    counts = ", ".join(f"{d}: {n}" for d, n in zip(spec["digits"], spec["train"]))
    return (f"{root}: train {sum(spec['train'])} ({counts}), val {VAL} and test {TEST} per digit"
            + ("" if spec["test_from_train"] else f"; {holdout_dir(root)}: {HOLDOUT} per digit"))


def holdout_dir(root: Path) -> Path:
    return root.parent / f"{root.name}_holdout"


def run_line(folders_dir: Path, folder: str, overrides: str, seed: int, name: str = NAME) -> str:
    # data_root is the folders' parent, so the run directory names (and the tables) say dataset.path=<folder>
    return f"name={name} data_root={folders_dir} dataset=folder dataset.path={folder} {overrides} seed={seed} {COMMON}"


def pair_lines(folders_dir: Path) -> list[str]:
    return [run_line(folders_dir, "rank10", "loss=ce", s, RANK_NAME) for s in SEEDS]


def lines(folders_dir: Path) -> list[str]:
    """The study's runs, seed-major (every method's seed 0 first), the 10-class folder first."""
    names = ["lt10"] + [f"pair_{a}_{b}" for a, b in PAIRS]
    return [run_line(folders_dir, f, m, s) for s in SEEDS for f in names for m in METHODS.values()]


def rank_pairs(runs_dir: Path) -> pd.DataFrame:
    """Digit pairs by confusions (both directions, summed over the runs' last-checkpoint test confusion matrices)."""
    from cdb.report.runs import load_runs

    runs = load_runs(runs_dir)
    if not runs:
        raise SystemExit(f"own_data_study: no finished run under {runs_dir}; train the pair-lines first")
    total = None
    for r in runs:
        cm = torch.tensor(r.metrics["checkpoints"]["last"]["test_confusion"])
        total = cm if total is None else total + cm
    names = runs[0].metrics["class_names"]
    n = total.sum(1)
    df = pd.DataFrame([{"pair": f"{names[i]}/{names[j]}", "confusions": int(total[i, j] + total[j, i]),
                        "a_as_b": int(total[i, j]), "b_as_a": int(total[j, i]),
                        "per 1000 images of the pair": round(1000 * float(total[i, j] + total[j, i])
                                                             / float(n[i] + n[j]), 2)}
                       for i in range(len(names)) for j in range(i + 1, len(names))])
    df = df.sort_values(["confusions", "pair"], ascending=[False, True]).reset_index(drop=True)
    df.index += 1
    df.attrs["runs"], df.attrs["errors"] = len(runs), int(n.sum() - total.diag().sum())
    df.attrs["images"] = int(n.sum())
    return df


def write_pairs(runs_dir: Path, out: Path, command: str) -> None:
    df = rank_pairs(runs_dir)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "pairs.csv", index_label="rank")
    top = df.head(10).to_markdown(tablefmt="github", index=True)
    md = ["# Which digit pairs LeNet-5 confuses most on balanced MNIST", "",
          f"Command: `{command}`", "",
          f"{df.attrs['runs']} runs of CE (`dataset=folder` recipe: LeNet-5, 30 epochs, batch 64, lr 0.01; seeds "
          f"{', '.join(map(str, SEEDS))}) on the balanced folder rank10 (1000 training images per digit); their "
          f"last checkpoints' confusion matrices on 800 held-out MNIST *training* images per digit (not the test "
          f"split), summed: {df.attrs['errors']} errors in {df.attrs['images']} images. A pair's confusions count "
          "both directions (a_as_b: images of the first digit predicted as the second).", "",
          top, "",
          f"The study's pairs (studies/own_data/own_data_study.py PAIRS): {', '.join(f'{a}/{b}' for a, b in PAIRS)}: the "
          "most-confused pairs other than the paper's 4/9 (2/7 and 2/3 tie; 2/7 was taken because 2/3 shares digit "
          "3 with 3/9). The smaller digit of each pair is its 1 % class."]
    (out / "pairs.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


def selection(runs_dir: Path) -> pd.DataFrame:
    """One row per (folder, method, checkpoint): balanced validation accuracy (what the defaults are chosen by),
    mean and std over seeds, and how many runs collapsed on validation; test columns are not read here."""
    from cdb.report.compare import select_runs, val_balanced
    from cdb.report.runs import get, load_runs

    methods = {frozenset(v.split()): k for k, v in METHODS.items()}   # run directories list overrides sorted
    recs = []
    for view in select_runs(load_runs(runs_dir), "both"):
        setting = view.path.parent.name.split(",")
        folder = next(i.split("=", 1)[1] for i in setting if i.startswith("dataset.path="))
        loss = [i for i in setting if not i.startswith("dataset")]
        ckpt = view.metrics["checkpoints"][view.view]
        recs.append({"folder": folder, "method": methods.get(frozenset(loss), " ".join(loss)), "select": view.view,
                     "seed": get(view.cfg, "seed"), "val_balanced": val_balanced(view),
                     "val_collapsed": bool(ckpt["val"].get("collapsed")), "unit": ckpt["unit"],
                     "wall_s": view.metrics.get("train_wall_time_s")})
    return pd.DataFrame(recs)


def write_selection(runs_dir: Path, out: Path, command: str) -> pd.DataFrame:
    df = selection(runs_dir)
    g = df.groupby(["method", "select", "folder"])
    cells = pd.DataFrame({"mean": g["val_balanced"].mean(), "std": g["val_balanced"].std(ddof=0),
                          "n": g["val_balanced"].count(), "val_collapsed": g["val_collapsed"].sum()}).reset_index()
    folders_ = sorted(cells["folder"].unique(), key=lambda f: (f != "lt10", f))
    wide = cells.pivot(index=["method", "select"], columns="folder", values="mean")[folders_]
    wide["mean over folders"] = wide[folders_].mean(axis=1, skipna=False)   # a row missing a folder: none
    wide["collapsed on val"] = cells.groupby(["method", "select"])["val_collapsed"].sum()
    wide["runs"] = cells.groupby(["method", "select"])["n"].sum()
    wide = wide.sort_values("mean over folders", ascending=False)
    out.mkdir(parents=True, exist_ok=True)
    cells.to_csv(out / "selection.csv", index=False, float_format="%.4f")
    text = wide.copy()
    for c in [*folders_, "mean over folders"]:
        text[c] = text[c].map(lambda v: f"{v:.2f}")
    for f in folders_:   # mean ± std (n) per folder
        sub = cells[cells["folder"] == f].set_index(["method", "select"])
        text[f] = [f"{sub.loc[i, 'mean']:.2f} ± {sub.loc[i, 'std']:.2f} ({sub.loc[i, 'n']})" if i in sub.index
                   else "—" for i in text.index]
    text = text.reset_index()
    text["method"] = [f"{m} ({METHODS.get(m, m)})" for m in text["method"]]
    hours = df.drop_duplicates(["folder", "method", "seed"])["wall_s"].sum() / 3600
    md = ["# Own-data study: balanced validation accuracy, the numbers the folder defaults are chosen by", "",
          f"Command: `{command}`", "",
          "Balanced accuracy (%) on each folder's validation split (20 images per class) of the checkpoint each row "
          "reads: `last` (trainer.select=last) or `best` (trainer.select=best: the validation with the highest "
          "balanced accuracy, the first of equals), mean ± std over seeds (population std; n in brackets); "
          "`mean over folders`: the mean of the folder means. `collapsed on val`: runs of the row with some class "
          "below 1 % validation accuracy at that checkpoint. Sorted by the mean over folders. No test number is "
          "read here: the test side of every row is in the folders' compare tables.", "",
          "A row's `best` figure is the maximum over its validations, so it is biased upwards against `last`: "
          "compare methods within one column of `select`, not `best` against `last`.", "",
          text.to_markdown(tablefmt="github", index=False), "",
          f"{df[['folder', 'method', 'seed']].drop_duplicates().shape[0]} runs, {hours:.2f} h of training "
          "(train_wall_time_s, one thread each)."]
    (out / "selection.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return wide


def holdout_records(runs_dir: Path, folders_dir: Path) -> pd.DataFrame:
    """Balanced accuracy of every run's last and best checkpoint on its folder's holdout (HOLDOUT more MNIST
    training images per digit, in none of the folder's splits): a second validation set, which can compare
    trainer.select=best with last without the bias of the validation split that chose `best`. One process: each
    folder's data is built once; the checkpoints are read and evaluated as cdb-eval does."""
    import torch

    from cdb.build.evaluate import finished_run, fitted_model, folder_split
    from cdb.core.metrics import summarize
    from cdb.data import build_dataset
    from cdb.models import build_model
    from cdb.report.runs import load_runs
    from cdb.rundir import BEST, LAST
    from cdb.rundir.io import load_checkpoint
    from cdb.train.evaluate import evaluate

    torch.set_num_threads(1)
    methods = {frozenset(v.split()): k for k, v in METHODS.items()}
    built: dict = {}
    recs = []
    for run in load_runs(runs_dir):
        setting = run.path.parent.name.split(",")
        folder = next(i.split("=", 1)[1] for i in setting if i.startswith("dataset.path="))
        cfg, _ = finished_run(run.path)
        if folder not in built:
            ds = dict(cfg["dataset"], root=str(folders_dir))
            splits = build_dataset(ds.pop("name"), seed=int(cfg["seed"]), **ds)
            built[folder] = splits, folder_split(holdout_dir(folders_dir / folder), splits)
        splits, hold = built[folder]
        model_cfg = dict(cfg["model"])
        name = model_cfg.pop("name")
        model = build_model(name, splits.num_classes, splits.input_shape, **model_cfg)
        for which, path in (("last", LAST), ("best", BEST)):
            fitted_model(model, load_checkpoint(run.path / path), run.path / path, name)
            res = evaluate(model.eval(), hold, splits, torch.device("cpu"), 1000)
            recs.append({"folder": folder, "method": methods.get(frozenset(i for i in setting
                                                                           if not i.startswith("dataset")), "?"),
                         "select": which, "seed": cfg["seed"],
                         "holdout_balanced": summarize(res.confusion)["macro_recall"]})
    return pd.DataFrame(recs)


def write_holdout(runs_dir: Path, folders_dir: Path, out: Path, command: str) -> pd.DataFrame:
    df = holdout_records(runs_dir, folders_dir)
    out.mkdir(parents=True, exist_ok=True)
    df.sort_values(["folder", "method", "select", "seed"]).to_csv(out / "holdout.csv", index=False,
                                                                  float_format="%.4f")
    cell = df.groupby(["method", "select", "folder"])["holdout_balanced"].agg(
        mean="mean", std=lambda v: v.std(ddof=0), count="count")
    wide = cell["mean"].unstack("folder")
    folders_ = sorted(wide.columns, key=lambda f: (f != "lt10", f))
    wide = wide[folders_]
    wide["mean over folders"] = wide.mean(axis=1, skipna=False)
    # best minus last, per run, then averaged: the paired difference trainer.select makes
    paired = df.pivot_table(index=["folder", "method", "seed"], columns="select", values="holdout_balanced")
    paired["best - last"] = paired["best"] - paired["last"]
    diff = paired.groupby(["method"])["best - last"].agg(["mean", "min", "max", "count"])
    text = wide.copy()
    for f in folders_:
        text[f] = [f"{cell.loc[(m, s, f), 'mean']:.2f} ± {cell.loc[(m, s, f), 'std']:.2f} "
                   f"({int(cell.loc[(m, s, f), 'count'])})" if (m, s, f) in cell.index else "—" for m, s in text.index]
    text["mean over folders"] = text["mean over folders"].map(lambda v: f"{v:.2f}")
    text = text.sort_values("mean over folders", ascending=False).reset_index()
    d = diff.reset_index()
    md = ["# Own-data study: balanced accuracy on a second validation set (holdout)", "",
          f"Command: `{command}`", "",
          f"Each study folder has a holdout: {HOLDOUT} more MNIST *training* images per digit, in none of its "
          "splits (not the test split). The last and the best-validation checkpoint of every run are evaluated on "
          "it (studies/own_data/own_data_study.py holdout). The validation split chose `best`, so its own figure for `best` "
          "is biased upwards; the holdout's is not: it compares trainer.select=best with last fairly. Mean ± std "
          "over seeds (population std; n in brackets), sorted by the mean over folders.", "",
          text.to_markdown(tablefmt="github", index=False), "",
          "Paired difference, holdout balanced accuracy of the best checkpoint minus the last one's, per run "
          "(points; all folders and seeds):", "",
          d.to_markdown(tablefmt="github", index=False, floatfmt=".2f"), ""]
    (out / "holdout.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return wide


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["folders", "pair-lines", "pairs", "lines", "tables", "holdout"])
    p.add_argument("--folders", type=Path, default=OUT / "own_data_folders", help="where the folders go")
    p.add_argument("--runs", type=Path, default=OUT, help="output root holding own_data_study/ and own_data_pairs/")
    p.add_argument("--out", type=Path, default=Path("results") / "own_data_study", help="where the tables go")
    p.add_argument("--command", default="make own-data-study", help="recorded in the tables")
    p.add_argument("--data-root", default=os.environ.get("CDB_DATA_ROOT", "data"), help="holds MNIST/raw/")
    args = p.parse_args(argv)
    if args.what == "folders":
        data = load_mnist(args.data_root)
        for name, spec in folders().items():
            print(write_folder(args.folders / name, spec, data))
    elif args.what == "pair-lines":
        print("\n".join(pair_lines(args.folders)))
    elif args.what == "lines":
        print("\n".join(lines(args.folders)))
    elif args.what == "holdout":
        write_holdout(args.runs / NAME, args.folders, args.out, args.command)
    elif args.what == "pairs":
        write_pairs(args.runs / RANK_NAME, args.out, args.command)
    else:
        from cdb.cli.table import build

        for f in ["lt10"] + [f"pair_{a}_{b}" for a, b in PAIRS]:
            build(["compare", "--runs", str(args.runs / NAME / f"dataset.path={f},*"), "--select", "both",
                   "--out", str(args.out / f), "--command", args.command])
        write_selection(args.runs / NAME, args.out, args.command)


if __name__ == "__main__":
    main()
