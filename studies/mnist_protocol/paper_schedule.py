"""The paper's own MNIST schedule at r = 0.99, run by run: results/paper_schedule.{md,csv,png}.

`make paper-schedule` trains the runs (CE, IFW, CB, CDB-CE with and without the authors' normalisation,
seeds 0 and 1; 4000 epochs of 50 steps each, lr 1e-3, x0.1 after 3000) and then calls
`python studies/mnist_protocol/paper_schedule.py --runs outputs/paper_schedule --out results`.

Per run: test error and minority-class test accuracy of the last and of the best-validation checkpoint, the
epoch of the best validation, and how often the two class weights swapped order ("flips"). Unfinished runs are
listed with the epoch they reached and no test figures. The figure shows, per setting, validation balanced
accuracy and both class weights against epoch.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from cdb.report import paper  # noqa: E402
from cdb.report.figures import pyplot, save_png  # noqa: E402
from cdb.report.runs import weight_flips  # noqa: E402
from cdb.rundir.io import atomic_write_text, read_jsonl  # noqa: E402


def setting_label(cfg: dict) -> str:
    loss = cfg["loss"]
    if loss["name"] == "cdb":
        return f"CDB-CE (normalize={loss['normalize']})"
    return loss["label"]


def run_row(run_dir: Path, root: Path, cfg: dict, rows: list[dict]) -> dict:
    length = cfg["trainer"]["length"]
    out = {"setting": setting_label(cfg), "seed": cfg["seed"], "run": str(run_dir.relative_to(root)),
           "epochs": rows[-1]["unit"] if rows else 0, "of": length, "flips": weight_flips(rows)}
    metrics_file = run_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    if metrics.get("status") != "complete":
        return out
    minority = min(range(len(metrics["train_class_counts"])), key=lambda c: metrics["train_class_counts"][c])
    for name in ("last", "best"):
        ck = metrics["checkpoints"][name]
        out[f"{name}_error"] = ck["test"]["error"]
        out[f"{name}_minority_acc"] = ck["test"]["per_class_accuracy"][minority]
    out["best_epoch"] = metrics["checkpoints"]["best"]["unit"]
    # of the run's last invocation only: a run resumed after an interruption counts from its resume
    out["last_session_min"] = metrics.get("train_wall_time_s", float("nan")) / 60
    return out


def load(root: Path) -> tuple[pd.DataFrame, dict[str, list[tuple[int, list[dict]]]]]:
    runs = sorted(p.parent for p in root.rglob("log.jsonl") if (p.parent / "config.yaml").exists())
    if not runs:
        raise SystemExit(f"paper_schedule: no run directories under {root}")
    records, curves = [], {}
    for r in runs:  # each run's config and log read once, for its table row and its curves
        cfg, rows = yaml.safe_load((r / "config.yaml").read_text()), read_jsonl(r / "log.jsonl")
        records.append(run_row(r, root, cfg, rows))
        curves.setdefault(setting_label(cfg), []).append((cfg["seed"], rows))
    return pd.DataFrame(records).sort_values(["setting", "seed"], ignore_index=True), curves


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std (population, ddof=0) over the finished seeds of each setting, beside the paper's r = 0.99 cell."""
    done = table.dropna(subset=["last_error"]) if "last_error" in table else table.iloc[0:0]
    paper_cells = {row: vals[paper.RATIOS.index("0.99")] for row, vals in paper.TABLE1.items()}
    out = []
    for setting, g in table.groupby("setting", sort=True):
        d = done[done.setting == setting]
        def cell(col: str) -> str:
            return f"{d[col].mean():.2f} ± {d[col].std(ddof=0):.2f} ({len(d)})" if len(d) else "no finished run"
        base = setting.split(" (")[0]
        out.append({"setting": setting, "last-checkpoint test error (%)": cell("last_error"),
                    "best-val test error (%)": cell("best_error"), "minority acc, last (%)": cell("last_minority_acc"),
                    "paper (r = 0.99)": paper_cells.get(base, "")})
    return pd.DataFrame(out)


def figure(curves: dict, path: Path) -> None:
    plt = pyplot()
    names = sorted(curves)
    fig, axes = plt.subplots(len(names), 2, figsize=(11, 2.4 * len(names)), sharex=True, squeeze=False)
    for i, name in enumerate(names):
        for seed, rows in sorted(curves[name]):
            ep = [r["unit"] for r in rows]
            color = f"C{seed % 10}"  # one colour per seed in both panels
            axes[i, 0].plot(ep, [r["val_balanced_accuracy"] for r in rows], lw=0.8, color=color, label=f"seed {seed}")
            for c, style in ((0, "-"), (1, ":")):
                axes[i, 1].plot(ep, [r["weights"][c] for r in rows], style, lw=0.8, color=color,
                                label=f"seed {seed}, w({'4, minority' if c == 0 else '9, majority'})")
        axes[i, 0].set_ylabel(name, fontsize=8)
        axes[i, 0].set_ylim(45, 101)
        axes[i, 0].legend(fontsize=6, loc="lower right")
        axes[i, 1].legend(fontsize=6, loc="upper right")
    axes[0, 0].set_title("validation balanced accuracy (%)")
    axes[0, 1].set_title("class weights")
    axes[-1, 0].set_xlabel("epoch (pass over 5000 training images)")
    axes[-1, 1].set_xlabel("epoch")
    fig.tight_layout()
    save_png(fig, path, "python studies/mnist_protocol/paper_schedule.py")
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default="outputs/paper_schedule", help="folder of the paper-schedule run directories")
    ap.add_argument("--out", default="results", help="folder for paper_schedule.md / .csv / .png")
    ap.add_argument("--command", default="make paper-schedule", help="the command recorded in the table")
    args = ap.parse_args(argv)
    root, out = Path(args.runs), Path(args.out)
    table, curves = load(root)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "paper_schedule.csv", table.to_csv(index=False, float_format="%.4f"))
    per_run = table.drop(columns=["run"]).round(2)
    md = [
        "# MNIST 4/9 at r = 0.99 on the paper's schedule",
        "",
        f"Made by `{args.command}`. LeNet-5, 4000 epochs of 50 steps (batch 100), SGD lr 1e-3 (x0.1 after epoch "
        "3000), momentum 0.9, weight decay 5e-4; CDB-CE: the literal rule (eq. 2-4, dynamic tau, eps 1e-4), "
        "weights recomputed after every epoch, no warm-up, floor or minimum weight. Test error in %; minority = "
        "digit 4. `flips`: how often the two class weights swapped order. `last_session_min`: training wall time of "
        "the run's last invocation (a run resumed after an interruption counts from its resume; runs shared two "
        "cores with other work, so times vary with load). Std is the population std (ddof=0).",
        "",
        "## Per setting (mean ± std (n) over finished seeds)",
        "",
        summary(table).to_markdown(index=False),
        "",
        "## Per run",
        "",
        per_run.to_markdown(index=False),
        "",
        "Run directories (relative to the output root): " + ", ".join(f"`{r}`" for r in table["run"]),
        "",
        "![validation balanced accuracy and class weights per epoch](paper_schedule.png)",
        "",
    ]
    atomic_write_text(out / "paper_schedule.md", "\n".join(md))
    figure(curves, out / "paper_schedule.png")
    print(f"wrote {out / 'paper_schedule.md'}, .csv, .png ({len(table)} runs, "
          f"{int(table['last_error'].notna().sum()) if 'last_error' in table else 0} finished)")


if __name__ == "__main__":
    main()
