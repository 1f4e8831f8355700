"""Writing an accuracy report as JSON, Markdown and a confusion-matrix PNG."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from landsegmenter.eval.metrics import Report
from landsegmenter.geo.cog import atomic_write_bytes


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def markdown(report: Report, title: str) -> str:
    lines = [
        f"## {title}",
        "",
        f"mIoU **{_pct(report.miou)}** · OA {_pct(report.overall_accuracy)} · kappa {report.kappa:.3f} · "
        f"macro-F1 {_pct(report.macro_f1)} · omitted classes: {', '.join(report.omitted_classes) or 'none'}",
        "",
        "| class | reference px | IoU | user's acc. | producer's acc. | F1 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in report.class_names:
        lines.append(
            f"| {name} | {report.reference_pixels[name]} | {_pct(report.iou[name])} | "
            f"{_pct(report.users_accuracy[name])} | {_pct(report.producers_accuracy[name])} | {_pct(report.f1[name])} |"
        )
    return "\n".join(lines) + "\n"


def confusion_png(report: Report, title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.asarray(report.matrix, dtype=float)[:, : len(report.class_names)]
    rows = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    k = len(report.class_names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * k, 1.0 + 0.6 * k))
    ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), report.class_names, rotation=45, ha="right")
    ax.set_yticks(range(k), report.class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    ax.set_title(title, fontsize=10)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{rows[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if rows[i, j] > 0.5 else "black")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def write_report(reports: dict[str, Report], outdir: Path, title: str) -> None:
    """``report.json`` (all variants), ``report.md`` and one ``confusion_<variant>.png`` each."""
    outdir.mkdir(parents=True, exist_ok=True)
    payload = {name: r.to_dict() for name, r in reports.items()}
    text = "".join(markdown(r, f"{title} — {name}") + "\n" for name, r in reports.items())
    atomic_write_bytes(outdir / "report.md", text.encode())
    for name, r in reports.items():
        atomic_write_bytes(outdir / f"confusion_{name}.png", confusion_png(r, f"{title} — {name}"))
    # last: a report.json marks a complete report (and makes the next run ask for --overwrite)
    atomic_write_bytes(outdir / "report.json", (json.dumps(payload, indent=2) + "\n").encode())
