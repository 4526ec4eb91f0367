"""A one-line description of the machine and date, written next to every measured number."""
from __future__ import annotations

import datetime
import os
import platform


def describe() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gpu = ""
    try:
        import torch
        if torch.cuda.is_available():
            gpu = f", GPU {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    except (ValueError, OSError):
        mem = 0
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM{gpu}; Python {platform.python_version()}"


def write_report(path: str, lines) -> None:
    """Write a Markdown result file (its folder made if needed) and print it."""
    text = "\n".join(lines)
    text += "" if text.endswith("\n") else "\n"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    print(text, end="")


def today() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
