"""The CPU split of bench/scaleout.py: CPU is charged to whoever spent it."""

import subprocess
import sys
import time

from bench import procs

SPIN = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"


def test_a_busy_gateway_and_a_finished_child_are_each_charged_their_own_cpu():
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    busy = subprocess.Popen([sys.executable, "-c", SPIN + "import time; time.sleep(30)"])
    try:
        before = procs.cpu_seconds({busy.pid})
        time.sleep(0.05)
        subprocess.run([sys.executable, "-c", SPIN], check=True)  # ends within the interval, like a wrk run
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            after = procs.cpu_seconds({busy.pid})
            if after["gateway"] - before["gateway"] >= 0.2:
                break
            time.sleep(0.05)
        assert after["gateway"] - before["gateway"] >= 0.2
        assert after["ended children"] - before["ended children"] >= 0.25
        # The idle process is "other", and nobody's CPU is counted twice.
        assert after["gateway"] < before["gateway"] + 0.6
    finally:
        for process in (idle, busy):
            process.kill()
            process.wait()
