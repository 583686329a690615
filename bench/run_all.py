"""`make bench`: every figure of docs/performance.md, with the reference figures beside them.

The reference figures (Redis's redis-benchmark, BullMQ, raw Celery) come from ../shared/bench/run.sh
when it is there, run in the same sitting, because this machine is noisy: compare ratios.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench import end_to_end

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT.parent / "shared" / "bench" / "run.sh"


def run(args: list[str]) -> str:
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True)
    return result.stdout.strip()


def one_line(output: str) -> str:
    """A bench's lines as one table cell (the load bench adds its p99 minute by minute)."""
    return "; ".join(output.splitlines())


def main() -> None:
    rows = [
        *(
            ("python -m bench.send_api 20 32", line)
            for line in run([sys.executable, "-m", "bench.send_api", "20", "32"]).splitlines()
        ),
        *(
            ("python -m bench.quota_cost 3000 5", line)
            for line in run([sys.executable, "-m", "bench.quota_cost", "3000", "5"]).splitlines()
        ),
        ("python -m bench.claim_cost 3000 3", run([sys.executable, "-m", "bench.claim_cost", "3000", "3"])),
        *(
            ("python -m bench.memory 100000", line)
            for line in run([sys.executable, "-m", "bench.memory", "100000"]).splitlines()
        ),
        *(
            ("python -m bench.scaling 20000 1 2 4", line)
            for line in run([sys.executable, "-m", "bench.scaling", "20000", "1", "2", "4"]).splitlines()
        ),
        *(
            ("python -m bench.contacts 3000 9", line)
            for line in run([sys.executable, "-m", "bench.contacts", "3000", "9"]).splitlines()
        ),
        *(
            ("python -m bench.pools 20 5", line)
            for line in run([sys.executable, "-m", "bench.pools", "20", "5"]).splitlines()
        ),
        ("python -m bench.webhooks_in 20 32", run([sys.executable, "-m", "bench.webhooks_in", "20", "32"])),
        ("python -m bench.callbacks 2000 100", run([sys.executable, "-m", "bench.callbacks", "2000", "100"])),
        ("python -m bench.callback_memory 5 200", run([sys.executable, "-m", "bench.callback_memory", "5", "200"])),
        *(("python -m bench.bulk 10000 5", line) for line in run([sys.executable, "-m", "bench.bulk"]).splitlines()),
        *(
            ("python -m bench.provider_overhead 2000", line)
            for line in run([sys.executable, "-m", "bench.provider_overhead", "2000"]).splitlines()
        ),
        ("python -m bench.operations", run([sys.executable, "-m", "bench.operations"])),
        ("python -m bench.hostile_template 10000", run([sys.executable, "-m", "bench.hostile_template", "10000"])),
        *(
            ("python -m bench.recovery 1500 3", line)
            for line in run([sys.executable, "-m", "bench.recovery", "1500", "3"]).splitlines()
        ),
        ("python -m bench.load 300 1000", one_line(run([sys.executable, "-m", "bench.load", "300", "1000"]))),
        (
            "python -m bench.load 60 1000 64 0 50",
            one_line(run([sys.executable, "-m", "bench.load", "60", "1000", "64", "0", "50"])),
        ),
        ("python -m bench.pacing 10 60 10", run([sys.executable, "-m", "bench.pacing", "10", "60", "10"])),
        *(
            ("python -m bench.pacing_senders 60 2000", line)
            for line in run([sys.executable, "-m", "bench.pacing_senders", "60", "2000"]).splitlines()
        ),
    ]
    for count, latency, concurrency, pool in (
        (10000, 0, 50, "threads"),
        (10000, 0, 2, "prefork"),
        (10000, 100, 50, "threads"),
    ):
        command = f"python -m bench.end_to_end {count} {latency} {concurrency} {pool}"
        rate = end_to_end.measure(count, latency, concurrency, pool)
        rows.append(
            (
                command,
                f"end-to-end, one worker ({pool} -c {concurrency}), MOCK_LATENCY_MS={latency}: {rate:.0f} messages/s",
            )
        )
    print("| ours | command |\n| --- | --- |")
    for command, figure in rows:
        print(f"| {figure} | `{command}` |")
    if REFERENCE.exists():
        print("\n| reference, same sitting: `../shared/bench/run.sh .venv/bin/python` |\n| --- |")
        for line in run(["bash", str(REFERENCE), sys.executable]).splitlines():
            print(f"| {line.strip()} |")
    else:
        print(f"\n(reference figures skipped: {REFERENCE} not found)")


if __name__ == "__main__":
    main()
