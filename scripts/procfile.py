"""Reading the Procfile, so tests and benchmarks run exactly the commands a deploy runs."""

from pathlib import Path

PROCFILE = Path(__file__).resolve().parent.parent / "Procfile"


def procfile_command(name: str) -> str:
    """The command of process type `name` (`web`, `worker`, `flower`)."""
    for line in PROCFILE.read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise KeyError(f"no {name!r} process in {PROCFILE}")
