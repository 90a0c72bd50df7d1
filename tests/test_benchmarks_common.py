"""The benchmark suites' bookkeeping: rows a collecting pass keeps from an earlier measurement."""

from __future__ import annotations

import json

from benchmarks import common


def test_recorded_rows_carry_their_measurement_and_match_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    assert common.recorded_rows("suite") == []                        # nothing measured yet
    (tmp_path / "suite.json").write_text(json.dumps({"rows": [
        {"kind": "pix2pix", "seed": 0, "steps": 400, "test": {"l1": 0.1}},
        {"kind": "pix2pix", "seed": 1, "steps": 400, "test": {"l1": 0.2}, "measured_at": "abc1234, measured then"}]}))
    (tmp_path / "suite.md").write_text("## t\n\n- machine: m\n- commit: 479858a, measured 2026-12-02 21:25 UTC\n")
    rec = common.recorded_rows("suite")
    assert [r["measured_at"] for r in rec] == ["479858a, measured 2026-12-02 21:25 UTC", "abc1234, measured then"]
    assert common.carried_row(rec, kind="pix2pix", seed=1, steps=400)["test"] == {"l1": 0.2}
    assert common.carried_row(rec, kind="pix2pix", seed=1, steps=300) is None   # another budget is another row
    assert common.carried_row(rec, kind="cyclegan", seed=0) is None
