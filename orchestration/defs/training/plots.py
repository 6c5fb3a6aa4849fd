"""Evaluation plots logged with each model version."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay


def pr_curve(y: np.ndarray, scores: np.ndarray, title: str) -> Figure:
    fig, ax = plt.subplots(figsize=(5, 4))
    if y.any():
        PrecisionRecallDisplay.from_predictions(y, scores, ax=ax)
    ax.set_title(title)
    return fig


def confusion(y: np.ndarray, flagged: np.ndarray, title: str) -> Figure:
    fig, ax = plt.subplots(figsize=(4, 4))
    ConfusionMatrixDisplay.from_predictions(y, flagged, labels=[0, 1], ax=ax, colorbar=False)
    ax.set_title(title)
    return fig


def score_distribution(y: np.ndarray, scores: np.ndarray, threshold: float, title: str) -> Figure:
    fig, ax = plt.subplots(figsize=(5, 4))
    bins = np.linspace(float(np.min(scores)), float(np.max(scores)) + 1e-9, 60).tolist()
    ax.hist(scores[y == 0], bins=bins, alpha=0.6, density=True, label="negative")
    if y.any():
        ax.hist(scores[y == 1], bins=bins, alpha=0.6, density=True, label="positive")
    ax.axvline(threshold, color="k", linestyle="--", label="threshold")
    ax.set_title(title)
    ax.legend()
    return fig


def importance(names: list[str], values: np.ndarray, title: str) -> Figure:
    order = np.argsort(values)[-20:]
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.barh([names[i] for i in order], values[order])
    ax.set_title(title)
    fig.tight_layout()
    return fig


def close(fig: Figure) -> None:
    plt.close(fig)
