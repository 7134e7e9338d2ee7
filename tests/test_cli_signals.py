"""``judgeforge`` treats SIGTERM like Ctrl-C, so a terminated command still runs its cleanup
(the demo and the benchmarks stop the vLLM servers they started in ``finally`` blocks)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
import argparse, os, signal, time
import judgeforge.cli.main as cli

def slow(args):
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
        print("not interrupted")
    finally:
        print("cleanup ran", flush=True)

def parser():
    p = argparse.ArgumentParser(prog="judgeforge")
    p.add_argument("-v", "--verbose", action="count", default=0)
    sub = p.add_subparsers(dest="command")
    sub.add_parser("slow").set_defaults(func=slow)
    return p

cli.build_parser = parser
raise SystemExit(cli.main(["slow"]))
"""


def test_sigterm_runs_the_commands_cleanup_and_exits_130() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 130, out.stderr
    assert "cleanup ran" in out.stdout and "not interrupted" not in out.stdout
    assert "judgeforge slow: interrupted" in out.stderr
