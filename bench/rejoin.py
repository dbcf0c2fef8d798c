#!/usr/bin/env python3
"""What a member that goes silent costs a swarm, and how long a restarted daemon takes to
take part again: real `slotmesh daemon` processes on 127.0.0.1 (no mDNS).

Four daemons A-D (bursts 12, 12, 12, 6; slots of 100 ms; phase timeout 1000 ms). D is
killed (SIGKILL) once it reached round 3, kept down until the others are 8 rounds further,
then started again on its data dir. Per run, from A's status.json and D's:
- rounds_slow: rounds while D was down that took longer than a phase timeout, and their
  total time (what the silent member cost before the others stopped waiting for it);
- median round time while D was down, once it was no longer awaited;
- sync_s: from D's restart to D holding the round the others are in;
- active_s: from D's restart to the first final round in which D is an active member again
  (its rejoin admitted: it takes part in the next round); "—" when it never is (a daemon of
  protocol version 5 and before exits 1: a failed member stays failed).

Usage: bench/rejoin.py BIN [RUNS] [LABEL]  (prints one markdown row per run and a median row)
"""

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

PHASE_TIMEOUT_MS = 1000
BURSTS = [("A", 12), ("B", 12), ("C", 12), ("D", 6)]
WAIT_S = 120


def status(directory):
    try:
        with open(os.path.join(directory, "status.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def start(binary, root, name, burst, peers):
    directory = os.path.join(root, name)
    os.makedirs(directory, exist_ok=True)
    command = [binary, "daemon", "--name", name, "--burst", str(burst),
               "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--data-dir", directory,
               "--phase-timeout-ms", str(PHASE_TIMEOUT_MS), "--swarm", "bench",
               "--slot-ms", "100", "--founders", str(len(BURSTS))]
    for peer in peers:
        command += ["--peer", peer]
    log = open(os.path.join(directory, "daemon.log"), "ab")
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=log)


def wait_for(what, check, deadline):
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise TimeoutError(what)


def listen_address(directory, deadline):
    return wait_for("listen address",
                    lambda: (status(directory) or {}).get("listen", [None])[0], deadline)


def round_of(directory):
    return (status(directory) or {}).get("round", 0)


def one_run(binary):
    root = tempfile.mkdtemp(prefix="slotmesh-rejoin-")
    dirs = {name: os.path.join(root, name) for name, _ in BURSTS}
    procs = {}
    deadline = time.time() + WAIT_S
    try:
        name, burst = BURSTS[0]
        procs[name] = start(binary, root, name, burst, [])
        first = listen_address(dirs[name], deadline)
        for name, burst in BURSTS[1:]:
            procs[name] = start(binary, root, name, burst, [first])
        wait_for("D at round 3", lambda: round_of(dirs["D"]) >= 3, deadline)
        killed_round = round_of(dirs["D"])
        procs["D"].send_signal(signal.SIGKILL)
        procs["D"].wait()
        killed_at = time.time()
        wait_for("the others 8 rounds on",
                 lambda: round_of(dirs["A"]) >= killed_round + 8, deadline)
        peers = [listen_address(dirs[n], deadline) for n in ("A", "B")]
        restart_round = round_of(dirs["A"])
        restarted = time.time()
        procs["D"] = start(binary, root, "D", 6, peers)
        def gone():
            return procs["D"].poll() is not None

        try:
            synced = wait_for("D synced", lambda: (round_of(dirs["D"]) >= round_of(dirs["A"]) > 0
                                                   and time.time()) or gone(), deadline)
        except TimeoutError:
            synced = None
        synced = None if synced is True else synced

        def d_active():
            s = status(dirs["D"])
            if not s:
                return None
            me = next((m for m in s.get("members", []) if m["name"] == "D"), None)
            if me and me["status"].lower() == "active" and s.get("round", 0) > restart_round:
                return time.time()
            return gone()

        try:
            active = wait_for("D active again", d_active, deadline)
        except TimeoutError:
            active = None
        active = None if active is True else active
        for name in ("A", "B", "C"):
            procs[name].wait(timeout=max(1, deadline - time.time()))
        if procs["D"].poll() is None:
            procs["D"].wait(timeout=max(1, deadline - time.time()))
        a = status(dirs["A"])
        finals = sorted((e["round"], e["final_unix_ms"]) for e in a["schedule"])
        times = {r: t for r, t in finals}
        durations = {r: times[r] - times[r - 1] for r in times if r - 1 in times}
        killed_ms = killed_at * 1000
        down = [(r, d) for r, d in durations.items()
                if times[r] > killed_ms and times[r] <= restarted * 1000]
        slow = [d for _, d in down if d > PHASE_TIMEOUT_MS]
        after_slow = [d for r, d in down if d <= PHASE_TIMEOUT_MS]
        return {
            "killed_round": killed_round,
            "rounds_slow": len(slow),
            "slow_ms": sum(slow),
            "down_fast_ms": statistics.median(after_slow) if after_slow else None,
            "sync_s": None if synced is None else synced - restarted,
            "active_s": None if active is None else active - restarted,
            "ok": all(p.returncode == 0 for p in procs.values()),
        }
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()


def fmt(v, spec):
    return "—" if v is None else format(v, spec)


def row(label, r):
    return (f"| {label} | {r['killed_round']} | {r['rounds_slow']} | {fmt(r['slow_ms'], '.0f')} | "
            f"{fmt(r['down_fast_ms'], '.0f')} | "
            f"{fmt(r['sync_s'], '.2f')} | {fmt(r['active_s'], '.2f')} | {'yes' if r['ok'] else 'NO'} |")


def main():
    binary = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    label = sys.argv[3] if len(sys.argv) > 3 else binary
    print("| binary | killed at round | slow rounds while down | their time ms | "
          "median round ms down, not awaited | sync s | active again s | all exit 0 |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    results = []
    for _ in range(runs):
        r = one_run(binary)
        results.append(r)
        print(row(label, r), flush=True)
    med = {k: (statistics.median([r[k] for r in results if r[k] is not None])
               if any(r[k] is not None for r in results) else None)
           for k in results[0] if k != "ok"}
    med["ok"] = all(r["ok"] for r in results)
    print(row(f"{label} (median of {runs})", med))


if __name__ == "__main__":
    main()
