"""Kills mpirun in the middle of a 2-rank training run and times how its ranks end: the
one procedure behind test_claims.py's launcher test and tests/bench/adversarial.py's
launcher case."""
import os
import signal
import subprocess
import time


def _running(pid):
    try:
        return open("/proc/%d/stat" % pid).read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def kill_launcher_midrun(mpirun, env, train_cmd, checkpoints, wait_s=120):
    """Starts `mpirun -np 2 sh -c train_cmd`, waits (at most wait_s) for a first file
    ckpt-* in the folder checkpoints, SIGKILLs mpirun and waits up to 30 s for the ranks
    (SIGKILLed if still there). Returns (rank pids, the kill's time, seconds the ranks
    took to end)."""
    mp = subprocess.Popen(mpirun + ["-np", "2", "sh", "-c", train_cmd], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, start_new_session=True)
    t0 = time.time()
    while time.time() - t0 < wait_s and not (
            os.path.isdir(checkpoints) and any(n.startswith("ckpt-") for n in os.listdir(checkpoints))):
        time.sleep(0.1)
    ranks = [int(x) for x in subprocess.run(["pgrep", "-P", str(mp.pid)], capture_output=True,
                                            text=True).stdout.split()]
    os.kill(mp.pid, signal.SIGKILL)
    killed = time.time()
    mp.wait()
    while time.time() - killed < 30 and any(_running(r) for r in ranks):
        time.sleep(0.02)
    took = time.time() - killed
    for r in ranks:
        if _running(r):
            os.kill(r, signal.SIGKILL)
    return ranks, killed, took


def written_after(folder, when):
    """The names in folder modified more than 0.2 s after when."""
    return [n for n in os.listdir(folder) if os.path.getmtime(os.path.join(folder, n)) > when + 0.2]
