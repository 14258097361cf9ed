"""The processes a served site's CPU is read from (bench.procs): a server's own and its children."""

import subprocess
import sys

from bench.procs import proc_children

# A parent that starts one child, prints the child's pid, and waits; both end when stdin closes.
PARENT = (
    "import subprocess, sys\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import sys; sys.stdin.read()'])\n"
    "print(child.pid, flush=True)\n"
    "sys.stdin.read()\n"
    "child.wait()\n"
)


def test_a_servers_children_are_found():
    """granian serves from a worker its main process starts: that worker's CPU is the server's."""
    with subprocess.Popen(
        [sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as parent:
        try:
            child = int(parent.stdout.readline())
            assert proc_children(pid=parent.pid) == [child]
            assert proc_children(pid=child) == []
        finally:
            parent.stdin.close()
            parent.wait(timeout=10)
