"""Two-worker MultiWorkerMirroredStrategy training on loopback, a few steps, bounded in time.

    python experiments/multiworker_smoke.py [--steps 2] [--timeout 600]

Starts two local worker processes whose TF_CONFIG describes a 2-worker cluster on 127.0.0.1,
each running `md_csd_tf.training.trainer.train` on the same tiny generated manifest; the trainer
picks MultiWorkerMirroredStrategy from TF_CONFIG, worker 0 (the chief) writes the run folder.
Prints each worker's exit status and the files written; exits non-zero on any failure.
On a real cluster, set TF_CONFIG on every machine the same way and run `md-csd train` there.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

WORKER = """
import sys
sys.path.insert(0, {tests!r})
from md_csd_tf.training.config import TrainConfig
from md_csd_tf.training.trainer import train
result = train(TrainConfig(manifest={manifest!r}, out_dir={out!r}, image_size=71, middle_blocks=0,
                           weights=None, epochs=1, batch_size=4, steps_per_epoch={steps},
                           validation_steps=1, freq_stat_samples=8, verbose=0))
print("epochs done", result.epochs_done)
"""


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "tests"))
    from data_fixtures import write_crop_manifest

    with tempfile.TemporaryDirectory() as folder:
        manifest = write_crop_manifest(Path(folder) / "crops")
        out = Path(folder) / "run"
        cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
        code = WORKER.format(
            tests=str(root / "tests"), manifest=str(manifest), out=str(out), steps=args.steps
        )
        workers = []
        for index in range(2):
            env = dict(
                os.environ,
                TF_CONFIG=json.dumps(
                    {"cluster": cluster, "task": {"type": "worker", "index": index}}
                ),
                TF_CPP_MIN_LOG_LEVEL="2",
            )
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-c", code],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        status = 0
        for index, worker in enumerate(workers):
            try:
                output, _ = worker.communicate(timeout=args.timeout)
            except subprocess.TimeoutExpired:
                for w in workers:
                    w.kill()
                print(f"worker {index}: timed out after {args.timeout:.0f} s")
                return 1
            print(
                f"worker {index}: exit {worker.returncode}; {output.strip().splitlines()[-1] if output.strip() else ''}"
            )
            if worker.returncode:
                # The traceback, without the tensors TensorFlow prints inside its messages.
                lines = [
                    line
                    for line in output.splitlines()
                    if not line.lstrip().startswith(("[", "..."))
                ]
                print("\n".join(lines[-60:]))
            status |= worker.returncode
        print(
            "written by the chief:",
            sorted(p.name for p in out.iterdir()) if out.exists() else "nothing",
        )
        return 1 if status or not (out / "best.keras").is_file() else 0


if __name__ == "__main__":
    sys.exit(main())
