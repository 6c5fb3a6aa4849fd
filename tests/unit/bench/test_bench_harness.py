"""The bench harness interleaves rounds, pairs ratios by round and rewrites only its section."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[3] / "bench" / "_harness.py"
_spec = importlib.util.spec_from_file_location("bench_harness_under_test", _PATH)
assert _spec and _spec.loader
h = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = h
_spec.loader.exec_module(h)


def test_interleave_rotates_order_and_keeps_every_round() -> None:
    calls: list[str] = []

    def case(name: str, value: float):  # type: ignore[no-untyped-def]
        def run() -> float:
            calls.append(name)
            return value + len(calls)

        return run

    got = h.interleave({"a": case("a", 0.0), "b": case("b", 100.0)}, rounds=3)
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert got["a"].values == (1.0, 4.0, 5.0)
    assert got["b"].values == (102.0, 103.0, 106.0)
    assert got["a"].median == 4.0 and got["a"].lo == 1.0 and got["a"].hi == 5.0
    assert len(got["a"].loads) == 3
    r = h.ratio(got, "a", "b")
    assert r.values == pytest.approx((1 / 102, 4 / 103, 5 / 106))
    assert got["a"].fmt("{:.0f}") == "4 (1–5)"


def test_section_write_replaces_only_its_own_section(tmp_path: Path) -> None:
    res = tmp_path / "RESULTS.md"
    res.write_text(
        "# Benchmark results\n\n## Other\nkeep me\n\n## Mine\nold 1\n\n## Last\nkeep too\n"
    )
    h.Section("Mine", command="x").write("new figure 42", res)
    text = res.read_text()
    assert "keep me" in text and "keep too" in text and "old 1" not in text
    mine = text.split("## Mine\n")[1].split("\n## ")[0]
    assert mine.startswith("Measured ") and "load average" in mine and "new figure 42" in mine
    h.Section("New", command="y").write("appended", res)
    assert res.read_text().rstrip().endswith("appended")
