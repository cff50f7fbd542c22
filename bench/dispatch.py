"""Dispatch latency and burst throughput of `baton run` (driven by bench/dispatch.sh).

Latency: a brief renamed into briefs/ → the agent process running (a C agent stamps
the wall clock first thing in main), over N drops spaced 20 ms apart.
Burst: M briefs renamed in at once, concurrency 2: tasks per second from the first rename
to the last `task.finished` journalled, beside `inotifywait -m | xargs -P2 AGENT` on the
same files in the same run, with two agents: `true` and the static C stamp (lighter
than `true`, so the daemon's own cost shows more). For each burst, the daemon's CPU time
(user + system, all threads) per task, and its peak RSS (VmHWM).
"""
import argparse, json, os, shutil, signal, subprocess, sys, time
from datetime import datetime


def cpu_times():
    """(steal, total) jiffies from /proc/stat: steal is time the host took from this VM."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (fields[7] if len(fields) > 7 else 0), sum(fields)


def percentile(values, p):
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def wait_for(what, limit, cond, interval=0.005):
    deadline = time.monotonic() + limit
    while not cond():
        if time.monotonic() > deadline:
            sys.exit(f"timed out after {limit}s waiting for {what}")
        time.sleep(interval)


def sandbox_settings(mode, root):
    """"on" asks for the Landlock sandbox (the daemon refuses to start without it), with
    the stamps folder the agent writes granted; "off" runs the agents unconfined."""
    if mode == "off":
        return "sandbox = false\n"
    if mode == "unset":  # for builds older than the sandbox, which refuse the key
        return ""
    return f"sandbox = true\nsandbox_writes = [{json.dumps(os.path.join(root, 'stamps'))}]\n"


def make_workspace(root, run, concurrency, sandbox="on"):
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(os.path.join(root, "briefs"))
    os.makedirs(os.path.join(root, "stamps"))
    os.makedirs(os.path.join(root, "incoming"))
    with open(os.path.join(root, "baton.toml"), "w") as f:
        f.write(f'[workspace]\nstages = ["briefs", "drafts"]\n\n'
                f'[agents.bench]\non = ["briefs/*.md"]\nrun = {json.dumps(run)}\n'
                f'concurrency = {concurrency}\nretries = 0\n{sandbox_settings(sandbox, root)}')


def start_daemon(baton, root):
    log = open(os.path.join(root, "daemon.log"), "w")
    proc = subprocess.Popen([baton, "-w", root, "run"], stdout=log, stderr=log,
                            env={**os.environ, "NO_COLOR": "1", "RUST_LOG": "baton=info"})
    wait_for("the daemon", 10, lambda: "daemon started" in open(os.path.join(root, "daemon.log")).read())
    return proc


def stop_daemon(proc):
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def finished_records(root):
    path = os.path.join(root, ".baton/journal/journal.jsonl")
    out = []
    try:
        with open(path) as f:
            for line in f:
                if '"task.finished"' in line:
                    out.append(json.loads(line))
    except FileNotFoundError:
        pass
    return out


def latency(baton, stamp, work, drops, run, sandbox):
    root = os.path.join(work, f"latency-{sandbox}{run}")
    make_workspace(root, [stamp], 4, sandbox)
    daemon = start_daemon(baton, root)
    sent = {}
    for i in range(drops):
        name = f"b{i:04d}.md"
        src = os.path.join(root, "incoming", name)
        with open(src, "w") as f:
            f.write(f"brief {i}\n")
        t0 = time.time_ns()
        os.rename(src, os.path.join(root, "briefs", name))
        sent[name] = t0
        time.sleep(0.02)
    stamps = os.path.join(root, "stamps")
    wait_for("all agents to start", 60, lambda: len(os.listdir(stamps)) >= drops)
    lat = []
    for name, t0 in sent.items():
        wait_for(f"stamp {name}", 5, lambda: open(os.path.join(stamps, name)).read().strip() != "")
        with open(os.path.join(stamps, name)) as f:
            lat.append((int(f.read().strip()) - t0) / 1e6)
    stop_daemon(daemon)
    return percentile(lat, 50), percentile(lat, 99), max(lat)


def prepare_burst(root, n):
    inc = os.path.join(root, "incoming")
    for i in range(n):
        with open(os.path.join(inc, f"b{i:05d}.md"), "w") as f:
            f.write(f"brief {i}\n")
    return [(os.path.join(inc, f"b{i:05d}.md"), os.path.join(root, "briefs", f"b{i:05d}.md")) for i in range(n)]


def cpu_seconds(pid):
    """User + system CPU time of a process and all its threads, dead ones included."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_peak_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def burst(baton, work, n, run, agent, label, sandbox):
    root = os.path.join(work, f"burst-{label}-{sandbox}{run}")
    make_workspace(root, [agent], 2, sandbox)
    moves = prepare_burst(root, n)
    daemon = start_daemon(baton, root)
    cpu0 = cpu_seconds(daemon.pid)
    t0 = time.time_ns()
    for src, dst in moves:
        os.rename(src, dst)
    # Count finished tasks from the new bytes only: re-reading the whole journal every
    # poll would take CPU from the daemon being measured.
    journal = os.path.join(root, ".baton/journal/journal.jsonl")
    seen = {"offset": 0, "finished": 0, "partial": b""}

    def count():
        with open(journal, "rb") as f:
            f.seek(seen["offset"])
            new = f.read()
        seen["offset"] += len(new)
        data = seen["partial"] + new
        whole, _, seen["partial"] = data.rpartition(b"\n")
        seen["finished"] += whole.count(b'"task.finished"')
        return seen["finished"]

    wait_for(f"{n} tasks", 600, lambda: count() >= n, interval=0.05)
    recs = finished_records(root)
    last = max(datetime.fromisoformat(r["ts"].replace("Z", "+00:00")).timestamp() for r in recs)
    cpu = cpu_seconds(daemon.pid) - cpu0
    rss = rss_peak_kb(daemon.pid)
    stop_daemon(daemon)
    done = sum(1 for r in recs if r["status"] == "done")
    elapsed = last - t0 / 1e9
    return n / elapsed, elapsed, rss, done, cpu / n * 1e6


def baseline(work, n, run, agent, label):
    """The same renames, each starting one AGENT, by inotifywait and xargs -P2."""
    root = os.path.join(work, f"baseline-{label}{run}")
    make_workspace(root, [agent], 2)
    moves = prepare_burst(root, n)
    log = open(os.path.join(root, "watch.log"), "w")
    watch = subprocess.Popen(["inotifywait", "-m", "-e", "moved_to", "--format", "%f", "briefs"],
                             cwd=root, stdout=subprocess.PIPE, stderr=log)
    head = subprocess.Popen(["head", "-n", str(n)], stdin=watch.stdout, stdout=subprocess.PIPE)
    xargs = subprocess.Popen(["xargs", "-P2", "-n1", agent], stdin=head.stdout, cwd=root)
    logpath = os.path.join(root, "watch.log")
    wait_for("inotifywait", 10, lambda: "Watches established" in open(logpath).read())
    t0 = time.monotonic()
    for src, dst in moves:
        os.rename(src, dst)
    xargs.wait(timeout=600)
    elapsed = time.monotonic() - t0
    watch.kill()
    watch.wait()
    return n / elapsed, elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--baton", required=True)
    ap.add_argument("--stamp", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--drops", type=int, default=200)
    ap.add_argument("--burst", type=int, default=2000)
    # The baseline alone moves by a quarter between runs minutes apart on a shared VM:
    # five runs make the median steadier.
    ap.add_argument("--repeat", type=int, default=5, help="runs; the table shows medians")
    ap.add_argument("--sandbox", choices=["on", "off", "both", "unset"], default="on",
                    help="agents in the Landlock sandbox, unconfined, or both in each run "
                         "(alternating which goes first)")
    args = ap.parse_args()

    has_baseline = shutil.which("inotifywait") is not None
    agents = [("true", shutil.which("true") or "/bin/true"), ("stamp", args.stamp)]
    modes = ["on", "off"] if args.sandbox == "both" else [args.sandbox]
    runs = []
    for run in range(args.repeat):
        steal0, total0 = cpu_times()
        row = {}
        order = modes if run % 2 == 0 else modes[::-1]
        for mode in order:
            p50, p99, worst = latency(args.baton, args.stamp, args.work, args.drops, run, mode)
            row.update({f"{mode} p50": p50, f"{mode} p99": p99, f"{mode} max": worst})
        for label, agent in agents:
            base = baseline(args.work, args.burst, run, agent, label)[0] if has_baseline else float("nan")
            row[f"{label} base"] = base
            for mode in order:
                rate, elapsed, rss_kb, done, cpu_us = burst(args.baton, args.work, args.burst, run,
                                                            agent, label, mode)
                key = f"{mode} {label}"
                row.update({f"{key} rate": rate, f"{key} done": done, f"{key} ratio": rate / base,
                            f"{key} cpu": cpu_us, f"{key} rss": rss_kb})
        steal1, total1 = cpu_times()
        steal = 100 * (steal1 - steal0) / max(1, total1 - total0)
        runs.append(row)
        for mode in modes:
            print(f"run {run + 1}/{args.repeat}, sandbox {mode}: p50 {row[mode + ' p50']:.2f} ms, "
                  f"p99 {row[mode + ' p99']:.2f} ms; "
                  + "; ".join(f"{l} {row[f'{mode} {l} rate']:.0f}/s vs {row[l + ' base']:.0f}/s "
                              f"(ratio {row[f'{mode} {l} ratio']:.2f}, "
                              f"{row[f'{mode} {l} cpu']:.0f} us CPU/task)"
                              for l, _ in agents)
                  + f"; host steal {steal:.1f}%", file=sys.stderr)
    med = lambda key: sorted(r[key] for r in runs)[len(runs) // 2]
    span = lambda key: f"{min(r[key] for r in runs):.2f} / {max(r[key] for r in runs):.2f}"

    print()
    print(f"{'measure (median of ' + str(args.repeat) + ' runs)':<50} {'value':>12}  {'target':>10}")
    for mode in modes:
        print("-" * 76)
        print(f"sandbox {mode}")
        print(f"{'latency p50, rename -> agent running (ms)':<50} {med(mode + ' p50'):>12.2f}  {'<= 2':>10}")
        print(f"{'latency p99 (ms)':<50} {med(mode + ' p99'):>12.2f}  {'<= 5':>10}")
        print(f"{'latency max (ms)':<50} {med(mode + ' max'):>12.2f}  {'':>10}")
        for label, _ in agents:
            key = f"{mode} {label}"
            print(f"{f'burst: {args.burst} x {label}, concurrency 2 (tasks/s)':<50} {med(key + ' rate'):>12.0f}  {'':>10}")
            print(f"{'  of which done':<50} {med(key + ' done'):>12}  {'':>10}")
            if has_baseline:
                print(f"{f'  baseline: inotifywait | xargs -P2 {label} (/s)':<50} {med(label + ' base'):>12.0f}  {'':>10}")
                target = ">= 0.75" if label == "true" else ""
                print(f"{'  ratio baton / baseline (same run)':<50} {med(key + ' ratio'):>12.2f}  {target:>10}")
                print(f"{'    lowest / highest of the runs':<50} {span(key + ' ratio'):>12}  {'':>10}")
            print(f"{'  daemon CPU per task (us)':<50} {med(key + ' cpu'):>12.0f}  {'<= 250':>10}")
            print(f"{'  daemon peak RSS (MB)':<50} {med(key + ' rss') / 1024:>12.1f}  {'<= 64':>10}")
    if len(modes) == 2:
        diff = sorted(r["on p50"] - r["off p50"] for r in runs)[len(runs) // 2]
        print("-" * 76)
        print(f"{'latency p50, sandbox on - off (ms, median of runs)':<50} {diff:>12.2f}  {'<= 1':>10}")
    if not has_baseline:
        print("baseline skipped: inotifywait not found (apt-get install inotify-tools)")


if __name__ == "__main__":
    main()
