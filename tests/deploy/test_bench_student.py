"""deploy.bench's student table: every runtime timed beside its baselines, each error measured against torch."""

from __future__ import annotations

import json

from deploy.bench import main, student_table, student_width_table, write_student_json
from train.export import TOLERANCE


def test_the_student_table_times_every_runtime_and_measures_each_error(tmp_path):
    rows = student_width_table(tmp_path, widths=(32,), n=5, stream_mb=13.0)
    assert [r["runtime"] for r in rows] == ["torch", "onnxruntime float32", "onnxruntime int8 (dynamic, per channel)",
                                            "onnxruntime int4 (blocks of 32)"]
    assert rows[0]["error"] is None and rows[1]["error"]["max_action"] <= TOLERANCE
    assert all(0.0 < r["error"]["mean_action"] for r in rows[2:])  # quantised: measured, not assumed zero
    for r in rows:
        assert 0.0 < r["p50_ms"] <= r["p99_ms"] and r["calls"] == (5 if r["error"] else 50)  # torch: >= 50 calls
        assert r["baseline"]["stream_mb"] > 12.0 and r["baseline"]["gemv_1792_p50_ms"] > 0.0
    student_table(rows)  # renders every row
    data = json.loads(write_student_json(tmp_path / "out", rows).read_text())
    assert data["format_version"] == 2 and len(data["rows"]) == 4 and len(data["loadavg"]) == 3


def test_student_only_writes_the_json_under_the_data_root(tmp_path):
    assert main(["--student-only", "--widths", "16", "--iters", "3", "--data-root", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "runs" / "deploy" / "bench" / "student.json").read_text())["rows"]
    assert {r["width"] for r in rows} == {16}
