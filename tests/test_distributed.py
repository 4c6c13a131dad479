"""Distributed training: two CPU processes (gloo) end with identical weights."""

import json
import subprocess
import sys

import pytest
import torch.distributed as dist


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="torch built without gloo")
def test_torchrun_two_cpu_ranks_hold_identical_weights(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc_per_node=2",
           "-m", "pixelperfect_loss.train", "predictor", "--steps", "3", "--batch", "2", "--crop", "32",
           "--ckpt-every", "2", "--out", str(tmp_path), "--no-progress", "--threads", "1", "--device", "cpu"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    log = [json.loads(line) for line in (tmp_path / "predictor-log.jsonl").read_text().splitlines()]
    sums = [r["rank_checksums"] for r in log if "rank_checksums" in r]
    assert len(sums) == 1 and len(sums[0]) == 2 and sums[0][0] == sums[0][1]
    assert (tmp_path / "predictor.safetensors").is_file() and (tmp_path / "predictor.ckpt").is_file()
