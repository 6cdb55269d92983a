"""Smoke test of benchmarks/env_throughput.py on a probe env (seconds, no MuJoCo compile)."""

import json

from benchmarks.env_throughput import main, markdown_table


def test_env_throughput_main_writes_table_and_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    records = main(
        [
            "--envs",
            "probe/target",
            "--backends",
            "mujoco,mjx",
            "--batch-sizes",
            "2,4",
            "--steps",
            "3",
            "--repeats",
            "1",
            "--json",
            str(out),
        ]
    )
    assert [(r["backend"], r["batch"]) for r in records] == [
        ("mujoco", 2),
        ("mujoco", 4),
        ("mjx", 2),
        ("mjx", 4),
    ]
    for r in records:
        assert r["sps"] > 0 and r["compile_s"] > 0 and r["device"].startswith("cpu")
        assert r["sps"] == r["batch"] * r["steps"] / r["run_s"]
    saved = json.loads(out.read_text())
    assert len(saved["records"]) == 4
    table = markdown_table(records)
    assert table.splitlines()[0].startswith("| env | batch | mujoco steps/s")
    assert "| probe/target | 4 |" in table and table in capsys.readouterr().out


def test_skips_batches_estimated_too_slow():
    records = main(
        [
            "--envs",
            "probe/target",
            "--backends",
            "mjx",
            "--batch-sizes",
            "1,100000000",
            "--steps",
            "2",
            "--repeats",
            "1",
            "--max-run-seconds",
            "1e-6",
        ]
    )
    assert records[0]["sps"] > 0 and records[1]["skipped"].startswith("est.")
    assert "skipped" in markdown_table(records)
