"""What a backbone comparison shows: the terminal table, `comparison.json`, `comparison.md`, the plot of accuracy
against speed with the Pareto-best backbones marked, and one recommendation per use.

Quick rows describe configs (sizes, exact parameters, compute per token); full rows add what was measured (score
and per-task metrics, training and inference speed, peak memory, size on disk). A row whose status is not `ok`
is listed under "not compared" with its reason.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from inference.io import write_text_atomic
from training.reporting import write_json_atomic

QUICK_COLUMNS = (
    ("backbone", "label", "text"), ("type", "model_type", "text"), ("params M", "parameters", "M"),
    ("non-emb. M", "non_embedding_parameters", "M"), ("hidden", "hidden_size", "int"), ("layers", "layers", "int"),
    ("heads", "heads", "int"), ("FFN", "intermediate_size", "int"), ("vocab", "vocab_size", "int"),
    ("max pos.", "max_positions", "int"), ("MFLOPs/token", "flops_per_token", "M"), ("weights", "weights", "where"),
)
FULL_HEAD = (("backbone", "label", "text"), ("layers", "layers", "int"), ("params M", "parameters", "M"),
             ("score", "score", "f4"))
FULL_TAIL = (
    ("train samples/s", "train_samples_per_s", "f1"), ("PyTorch texts/s", "pytorch_texts_per_s", "f1"),
    ("int8 texts/s", "onnx_int8_texts_per_s", "f1"), ("peak MB train", "peak_rss_train_mb", "f0"),
    ("peak MB PyTorch", "peak_rss_pytorch_mb", "f0"), ("peak MB int8", "peak_rss_onnx_int8_mb", "f0"),
    ("size MB", "model_mb", "f1"), ("int8 MB", "onnx_int8_mb", "f1"),
)
PLOT_FILE = "accuracy_vs_speed.png"
CLOSE_TO_BEST = 0.01  # "within 1 point" of the best score (scores are in [0, 1])


def measured(row: dict) -> bool:
    """A full row with a score and a PyTorch speed (what the plot, Pareto front and recommendations read)."""
    return row.get("status") == "ok" and row.get("score") is not None and bool(row.get("pytorch_texts_per_s"))


def columns(mode: str, rows: list[dict]) -> list[tuple[str, str, str]]:
    """(header, key, format) of the table; full mode has one column per task (its primary metric)."""
    if mode == "quick":
        return list(QUICK_COLUMNS)
    tasks: dict[str, str] = {}
    for row in rows:
        for name, task in (row.get("tasks") or {}).items():
            tasks.setdefault(name, task["metric"])
    return [*FULL_HEAD, *((f"{name} {metric}", f"tasks.{name}", "f4") for name, metric in tasks.items()), *FULL_TAIL]


def cell(row: dict, key: str, form: str) -> str:
    """One formatted value ('-' when absent)."""
    value: Any = row
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, dict):
        value = value.get("value")
    if value is None:
        return "-"
    if form == "where":
        return "none" if str(value).startswith("none") else str(value)
    if form == "M":
        return f"{value / 1e6:.1f}"
    if form in ("f0", "f1", "f4"):
        return f"{value:.{form[1]}f}"
    return str(value)


def table_rows(summary: dict) -> tuple[list[str], list[list[str]]]:
    """Headers and the formatted cells of the compared rows (Pareto-best labels marked with *)."""
    cols = columns(summary["mode"], summary["backbones"])
    pareto = set(summary.get("pareto") or [])
    body = []
    for row in (r for r in summary["backbones"] if r.get("status") == "ok"):
        cells = [cell(row, key, form) for _, key, form in cols]
        cells[0] += " *" if row["backbone"] in pareto else ""
        body.append(cells)
    return [header for header, _, _ in cols], body


def format_table(summary: dict) -> str:
    """The comparison as an aligned text table, then Pareto, recommendations and what was not compared."""
    headers, body = table_rows(summary)
    widths = [max(len(c) for c in column) for column in zip(headers, *body)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
             for cells in (headers, *body)]
    return "\n".join(lines + footer_lines(summary))


def footer_lines(summary: dict) -> list[str]:
    """Pareto-best, one recommendation per use, and each backbone not compared with its reason."""
    labels = {r["backbone"]: r.get("label", r["backbone"]) for r in summary["backbones"]}
    lines = []
    if summary.get("pareto"):
        lines.append("Pareto-best (marked *: no other backbone is both more accurate and faster): "
                     + ", ".join(labels[name] for name in summary["pareto"]))
    lines += [f"{r['use']}: {r['backbone']} ({r['why']})" for r in summary["recommendations"]]
    reused = [r["label"] for r in summary["backbones"] if r.get("reused")]
    if reused:
        lines.append(f"reused from an earlier run with the same settings: {', '.join(reused)} (--remeasure measures "
                     "again)")
    lines += [f"no ONNX int8 for {r['label']}: {r['onnx_int8_error']}" for r in summary["backbones"]
              if r.get("status") == "ok" and r.get("onnx_int8_error")]
    lines += [f"not compared: {r['backbone']}: {r['status']}" for r in summary["backbones"] if r.get("status") != "ok"]
    return lines


def pareto_best(rows: list[dict]) -> list[str]:
    """Measured backbones that no other one beats on both score and PyTorch texts/s."""
    points = [(r["backbone"], r["score"], r["pytorch_texts_per_s"]) for r in rows if measured(r)]
    return [name for name, score, speed in points
            if not any(s >= score and v >= speed and (s > score or v > speed) for _, s, v in points)]


def recommendations(mode: str, rows: list[dict]) -> list[dict[str, str]]:
    """One line per use: full mode fastest within 1 point of the best score, most accurate, smallest; quick mode
    smallest and least compute per token."""
    if mode == "quick":
        ok = [r for r in rows if r.get("status") == "ok"]
        if not ok:
            return []
        small, light = min(ok, key=lambda r: r["parameters"]), min(ok, key=lambda r: r["flops_per_token"])
        return [{"use": "smallest", "backbone": small["label"],
                 "why": f"{small['parameters'] / 1e6:.1f} M parameters"},
                {"use": "least compute", "backbone": light["label"],
                 "why": f"{light['flops_per_token'] / 1e6:.1f} MFLOPs per token at {light['sequence_length']} tokens"}]
    ok = [r for r in rows if measured(r)]
    if not ok:
        return []
    best = max(ok, key=lambda r: r["score"])
    fast = max((r for r in ok if r["score"] >= best["score"] - CLOSE_TO_BEST), key=lambda r: r["pytorch_texts_per_s"])
    small = min(ok, key=lambda r: (r.get("model_mb") or r["parameters"], r["parameters"]))
    return [
        {"use": "fast serving", "backbone": fast["label"],
         "why": f"fastest within 1 point of the best score: {_speeds(fast)}, score {fast['score']:.4f} "
                f"({(fast['score'] - best['score']) * 100:+.1f} points)"},
        {"use": "best accuracy", "backbone": best["label"], "why": f"score {best['score']:.4f}, {_speeds(best)}"},
        {"use": "smallest", "backbone": small["label"],
         "why": f"{small['parameters'] / 1e6:.1f} M parameters, {cell(small, 'model_mb', 'f1')} MB on disk, "
                f"score {small['score']:.4f}"},
    ]


def _speeds(row: dict) -> str:
    int8 = row.get("onnx_int8_texts_per_s")
    return f"{row['pytorch_texts_per_s']:.1f} texts/s PyTorch" + (f", {int8:.1f} ONNX int8" if int8 else "")


def summarise(mode: str, rows: list[dict], machine: dict, settings: dict | None, wall_s: float) -> dict:
    """Everything comparison.json holds."""
    pareto = pareto_best(rows) if mode == "full" else []
    machine = {**machine, "load_average_end": list(os.getloadavg())}
    return {"mode": mode, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "wall_s": wall_s,
            "machine": machine, "settings": settings, "backbones": rows, "pareto": pareto,
            "recommendations": recommendations(mode, rows)}


def plot_accuracy_vs_speed(summary: dict, path: Path) -> Path | None:
    """Score against PyTorch texts/s (hollow triangles: ONNX int8), Pareto-best as red stars on a dashed front."""
    rows = [r for r in summary["backbones"] if measured(r)]
    if not rows:
        return None
    fig = Figure(figsize=(7.5, 5))
    ax = fig.add_subplot()
    pareto = set(summary["pareto"])
    for row in rows:
        x, y, best = row["pytorch_texts_per_s"], row["score"], row["backbone"] in pareto
        if row.get("onnx_int8_texts_per_s"):
            ax.plot([x, row["onnx_int8_texts_per_s"]], [y, y], ls=":", color="grey", zorder=1)
            ax.scatter([row["onnx_int8_texts_per_s"]], [y], marker="^", facecolors="none", edgecolors="tab:grey",
                       zorder=2)
        ax.scatter([x], [y], marker="*" if best else "o", s=180 if best else 50,
                   color="tab:red" if best else "tab:blue", zorder=3)
        ax.annotate(row["label"], (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
    front = sorted((r["pytorch_texts_per_s"], r["score"]) for r in rows if r["backbone"] in pareto)
    ax.plot([p[0] for p in front], [p[1] for p in front], ls="--", color="tab:red", alpha=0.5, zorder=1)
    handles = [Line2D([], [], marker="*", color="tab:red", ls="--", markersize=11, label="Pareto-best (PyTorch)"),
               Line2D([], [], marker="o", color="tab:blue", ls="", label="PyTorch fp32"),
               Line2D([], [], marker="^", color="tab:grey", ls="", markerfacecolor="none", label="ONNX int8")]
    ax.legend(handles=handles, fontsize=8, loc="best")
    ax.set(xlabel="inference texts/s on this CPU", ylabel="test score (mean of primary metrics)",
           title="Accuracy against speed")
    scores = [r["score"] for r in rows]
    middle, half = (max(scores) + min(scores)) / 2, max((max(scores) - min(scores)) * 0.6, 0.01)
    ax.set_ylim(middle - half, middle + half)
    ax.set_xlim(left=0)
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.grid(alpha=0.3)
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    return path


def render_markdown(summary: dict) -> str:
    """comparison.md: where and how it was measured, the table, Pareto, recommendations, what was not compared."""
    headers, body = table_rows(summary)
    lines = [f"# Backbone comparison ({summary['mode']})", "", _machine_line(summary)]
    if summary["mode"] == "full":
        lines += ["", _budget_line(summary)]
    lines += ["", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cells).replace(" *", " \\*") + " |" for cells in body]
    lines += [""] + [f"- {line}".replace("marked *", "marked \\*") for line in footer_lines(summary)]
    if summary["mode"] == "full" and any(measured(r) for r in summary["backbones"]):
        lines += ["", f"![accuracy against speed]({PLOT_FILE})"]
    return "\n".join(lines) + "\n"


def _machine_line(summary: dict) -> str:
    m = summary["machine"]
    start, end = (", ".join(f"{v:.2f}" for v in m.get(key, [])) for key in ("load_average", "load_average_end"))
    return (f"{summary['created']}, {m.get('cpu')} ({m.get('cores')} cores; instruction sets: "
            f"{' '.join(m.get('instruction_sets') or []) or 'none of note'}), load average {start} at the start and "
            f"{end} at the end; "
            f"torch {m.get('torch')} (threads: {m.get('torch_threads')}), transformers {m.get('transformers')}, "
            f"onnxruntime {m.get('onnxruntime')}. "
            f"Wall time of the whole comparison: {summary['wall_s']:.1f} s.")


def _budget_line(summary: dict) -> str:
    training, inference = summary["settings"]["training"], summary["settings"]["inference"]
    done = next((r for r in summary["backbones"] if r.get("status") == "ok"), {})
    cache = " on the embedding cache" if done.get("embedding_cache") else ""
    cache += " (built cold for each backbone)" if cache and done.get("embedding_cache_cold") else ""
    epochs = f"{training['num_train_epochs']} epoch(s)"
    steps = f"{training['max_steps']} steps" if training["max_steps"] > 0 else epochs
    return (f"Same budget for every backbone: {done.get('train_rows', '?')} training rows, {steps}, batch "
            f"{training['per_device_train_batch_size']}, --freeze-strategy {training['freeze_strategy']}{cache}; "
            f"scores on {done.get('test_rows', '?')} {done.get('split', 'test')} rows. Inference: "
            f"{done.get('inference_texts', inference['inference_texts'])} test texts, batch "
            f"{inference['inference_batch_size']}, threads {inference['inference_threads']}, "
            f"{inference['inference_device']}; each back end in its own process.")


def write_outputs(summary: dict, folder: Path) -> list[Path]:
    """comparison.json, comparison.md and (full mode, something measured) the plot, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    files = [write_json_atomic(folder / "comparison.json", summary),
             write_text_atomic(folder / "comparison.md", render_markdown(summary))]
    if summary["mode"] == "full":
        files.append(plot_accuracy_vs_speed(summary, folder / PLOT_FILE))
    return [f for f in files if f is not None]
