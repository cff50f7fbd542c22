"""History at scale (driven by bench/history.sh): what reports, the daemon's memory and a
restart cost in workspaces with long histories.

Histories: REAL sizes are made by the daemon itself (N briefs, a no-op agent, one task
each); GENERATED sizes are journals written by this script (six valid records per task:
brief, queued, started, committing, output, finished), with no files behind them. For
each size it prints, beside the goal of issue 12:
- each report as a whole process (median of 5, after the state store is built):
  status, who PATH, trace PATH, logs TASK, versions PATH, log -n 50;
- the first report's time, which builds the state store from the journal;
- the daemon's peak RSS and, from `baton run --once` to the new brief's task.started,
  how long one brief dropped before a restart waits;
- for real sizes, two restarts with nothing new (`run --once` over every unchanged file):
  the first re-hashes files ingested live, the second checks them by stat.
"""
import argparse, hashlib, json, os, shutil, statistics, subprocess, sys, time

GOALS = {
    "report": "≤ 50 ms at 1M, ≤ 2× of 10k",
    "rss": "≤ 100 MB at 1M, ≤ 1.5× of 10k",
    "dispatch": "≤ 200 ms",
    "reconcile": "≤ 2 s over 100k files",
}


def peak_rss(cmd, env=None):
    """Peak RSS of `cmd` in MB, through /usr/bin/time: a child forked from this process
    would count this process's own pages in its peak, until it execs."""
    p = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, env=env)
    return int(p.stderr.decode().strip().splitlines()[-1]) / 1024


def timed(cmd, env=None):
    """Wall time of `cmd`, and its peak RSS from a second run."""
    start = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.monotonic() - start
    if p.returncode not in (0, 1):
        sys.exit(f"{' '.join(cmd)} failed: {p.stderr.decode(errors='replace')}")
    return elapsed, peak_rss(cmd, env)


def make_config(root):
    os.makedirs(os.path.join(root, "briefs"), exist_ok=True)
    os.makedirs(os.path.join(root, "drafts"), exist_ok=True)
    with open(os.path.join(root, "baton.toml"), "w") as f:
        f.write('[workspace]\nstages = ["briefs", "drafts"]\n\n'
                '[agents.writer]\non = ["briefs/*.md"]\nrun = ["true"]\nconcurrency = 2\nretries = 0\n')


def real_history(baton, root, n):
    shutil.rmtree(root, ignore_errors=True)
    make_config(root)
    for i in range(n):
        with open(os.path.join(root, "briefs", f"b{i:07}.md"), "w") as f:
            f.write(f"brief {i}\n")
    t, _ = timed([baton, "-w", root, "run", "--once"], env={**os.environ, "RUST_LOG": "warn"})
    print(f"  made {n} tasks with the daemon in {t:.0f} s", flush=True)


SEGMENT = 64 << 20  # the daemon's default [journal] segment_size


def segment_name(base):
    return "journal.jsonl" if base == 0 else f"journal.jsonl.{base:016}"


def last_segment(root):
    """The journal's last segment: the one being written."""
    d = os.path.join(root, ".baton", "journal")
    names = sorted(n for n in os.listdir(d) if n.startswith("journal.jsonl") and ".tmp-" not in n)
    return os.path.join(d, names[-1])


class SegmentWriter:
    """Writes the journal as the daemon keeps it: a new segment, named by its logical
    offset, once one holds SEGMENT bytes."""

    def __init__(self, root):
        self.dir = os.path.join(root, ".baton", "journal")
        self.base, self.offset = 0, 0
        self.f = open(os.path.join(self.dir, segment_name(0)), "w")

    def write(self, line):
        if self.offset >= SEGMENT:
            self.f.close()
            self.base += self.offset
            self.offset = 0
            self.f = open(os.path.join(self.dir, segment_name(self.base)), "w")
        self.f.write(line)
        self.offset += len(line)

    def close(self):
        """Closes the last, and compresses the sealed ones but the newest as the daemon
        does (zstd -3), if the zstd tool is there."""
        self.f.close()
        names = sorted(n for n in os.listdir(self.dir) if n.startswith("journal.jsonl"))
        if shutil.which("zstd"):
            for name in names[:-2]:
                plain = os.path.join(self.dir, name)
                packed = os.path.join(self.dir, f"journal.jsonl.{self.base_of(name):016}.zst")
                subprocess.run(["zstd", "-q", "-3", "--rm", plain, "-o", packed], check=True)
        return self.base + self.offset

    @staticmethod
    def base_of(name):
        return 0 if name == "journal.jsonl" else int(name.rsplit(".", 1)[1])


def generated_history(root, n):
    shutil.rmtree(root, ignore_errors=True)
    make_config(root)
    os.makedirs(os.path.join(root, ".baton", "journal"))
    seq = 0
    start = time.time() - n * 0.01
    f = SegmentWriter(root)
    def rec(ts, **r):
        nonlocal seq
        seq += 1
        f.write(json.dumps({"seq": seq, "ts": ts, **r}, separators=(",", ":")) + "\n")
    for i in range(n):
        t = start + i * 0.01
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03}Z"
        h = hashlib.blake2b(str(i).encode(), digest_size=32).hexdigest()
        task = "t-" + h[:12]
        brief, draft = f"briefs/b{i:07}.md", f"drafts/b{i:07}.md"
        rec(ts, kind="artifact", path=brief, hash=h, size=10, by="human")
        rec(ts, kind="task.queued", task=task, agent="writer", input=brief, input_hash=h,
            parent=None, depth=0, reason="glob")
        rec(ts, kind="task.started", task=task, attempt=1, pid=1000 + i % 30000, start_time=1)
        rec(ts, kind="task.committing", task=task, attempt=1, outputs=[{"path": draft, "hash": h}])
        rec(ts, kind="artifact", path=draft, hash=h, size=10, by="writer", task=task)
        rec(ts, kind="task.finished", task=task, attempt=1, status="done", exit=0,
            duration_ms=5, outputs=[{"path": draft, "hash": h}])
    size = f.close()
    segments = len(os.listdir(os.path.join(root, ".baton", "journal")))
    print(f"  generated {n} tasks ({seq} records, {size / 1e6:.0f} MB in {segments} segments)",
          flush=True)


def measure(baton, root, n, real, repeat):
    out = {}
    b = lambda *args: [baton, "-w", root, *args]
    t, rss = timed(b("status"))
    out["first status (builds the store)"] = (t, rss)
    # A task and path from the middle of the last segment (the middle of the history in
    # journals under 64 MiB).
    mid = f"b{n // 2:07}.md"
    with open(last_segment(root), "rb") as f:
        f.seek(os.path.getsize(f.name) // 2)
        f.readline()
        while True:
            r = json.loads(f.readline())
            if r["kind"] == "task.queued":
                task, mid = r["task"], os.path.basename(r["input"])
                break
    reports = {
        "status": b("status"),
        "who PATH": b("who", f"briefs/{mid}"),
        "trace PATH": b("trace", f"briefs/{mid}"),
        "logs TASK": b("logs", task),
        "versions PATH": b("versions", f"briefs/{mid}"),
        "log -n 50": b("log", "-n", "50"),
    }
    for name, cmd in reports.items():
        times = []
        for _ in range(repeat):
            start = time.monotonic()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times.append(time.monotonic() - start)
        out[name] = (statistics.median(times), peak_rss(cmd))
    if real:
        # The first restart hashes what was ingested live (hashed within the racy window
        # of its change, so its stat cannot vouch for it yet); the next one checks by stat.
        for name in ["restart, nothing new (reconcile)", "again, nothing new (by stat)"]:
            out[name] = timed(b("run", "--once"), env={**os.environ, "RUST_LOG": "warn"})
    # One new brief, then a restart: until its task started, and the daemon's peak RSS.
    # The journal's length, not its lines: reading it would grow this process, and a
    # child's peak RSS counts what it shared with its parent before exec.
    path = last_segment(root)
    before = os.path.getsize(path)
    with open(os.path.join(root, "briefs", "new.md"), "w") as f:
        f.write(f"a new brief {time.time()}\n")
    start = time.monotonic()
    errors = open(os.path.join(root, "restart.log"), "w")
    rss_file = os.path.join(root, "restart.rss")
    p = subprocess.Popen(["/usr/bin/time", "-o", rss_file, "-f", "%M", *b("run", "--once")],
                         stdout=errors, stderr=errors, env={**os.environ, "RUST_LOG": "warn"})
    started, usage, status = None, None, None
    with open(path, "rb") as f:
        f.seek(before)
        pending = b""
        while usage is None:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                usage = ru
            pending += f.read()
            *lines, pending = pending.split(b"\n")
            if started is None and any(b'"task.started"' in line for line in lines):
                started = time.monotonic() - start
            if usage is None:
                time.sleep(0.002)
    if os.waitstatus_to_exitcode(status) != 0 or started is None:
        errors.close()
        print(f"  the restart failed or started nothing: {open(errors.name).read()[-2000:]}")
    with open(rss_file) as f:
        rss = int(f.read().strip().splitlines()[-1]) / 1024
    out["restart → new brief started"] = (started if started is not None else float("nan"), rss)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--baton", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--real", default="10000,100000")
    ap.add_argument("--generated", default="1000000")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the workspaces (under --work)")
    args = ap.parse_args()
    sizes = [(int(n), True) for n in args.real.split(",") if n] + \
            [(int(n), False) for n in args.generated.split(",") if n]
    results = {}
    for n, real in sizes:
        label = f"{n // 1000}k {'real' if real else 'generated'}"
        print(f"{label}:", flush=True)
        root = os.path.join(args.work, label.replace(" ", "-"))
        if real:
            real_history(args.baton, root, n)
        else:
            generated_history(root, n)
        results[label] = measure(args.baton, root, n, real, args.repeat)
        for k, (t, rss) in results[label].items():
            print(f"  {k:36} {t * 1000:>10.1f} ms {rss:>7.1f} MB", flush=True)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    labels = list(results)
    rows = []
    for r in results.values():
        for k in r:
            if k not in rows:
                rows.append(k)
    print()
    print(f"{'':36}" + "".join(f"{l:>22}" for l in labels) + "   goal")
    for row in rows:
        cells = []
        for l in labels:
            v = results[l].get(row)
            cells.append(f"{v[0] * 1000:>10.1f} ms {v[1]:>6.1f} MB" if v else f"{'—':>22}")
        goal = GOALS["rss"] if "started" in row else GOALS["reconcile"] if "nothing new" in row \
            else "" if "first" in row else GOALS["report"]
        if "started" in row:
            goal = f"{GOALS['dispatch']}; RSS {GOALS['rss']}"
        print(f"{row:36}" + "".join(f"{c:>22}" for c in cells) + f"   {goal}")


if __name__ == "__main__":
    main()
