"""The daemon's CPU per task in a burst, thread by thread (release build):
    python3 bench/threads.py --baton target/release/baton [--agent /bin/true] [--burst 3000] [--dir DIR]
Each thread's user + system time from /proc/PID/task/*/stat, over a burst of briefs
renamed in at once (concurrency 2). DIR (default: a new folder under /tmp) must not
exist: new inodes made next to many just deleted ones cost far more on some file
systems, so a reused folder measures that, not baton."""
import argparse, collections, os, subprocess, sys, tempfile, time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--baton", required=True)
    ap.add_argument("--agent", default="/bin/true")
    ap.add_argument("--burst", type=int, default=3000)
    ap.add_argument("--dir")
    a = ap.parse_args()
    root = a.dir or os.path.join(tempfile.mkdtemp(), "ws")
    for d in ["briefs", "incoming"]:
        os.makedirs(os.path.join(root, d))
    with open(os.path.join(root, "baton.toml"), "w") as f:
        f.write(f'[workspace]\nstages = ["briefs", "drafts"]\n\n[agents.bench]\non = ["briefs/*.md"]\n'
                f'run = ["{a.agent}"]\nconcurrency = 2\nretries = 0\n')
    for i in range(a.burst):
        with open(os.path.join(root, "incoming", f"b{i}.md"), "w") as f:
            f.write(f"brief {i}\n")
    log = os.path.join(root, "daemon.log")
    d = subprocess.Popen([a.baton, "-w", root, "run"], stdout=open(log, "w"), stderr=subprocess.STDOUT,
                         env={**os.environ, "RUST_LOG": "baton=info"})
    while "daemon started" not in open(log).read():
        time.sleep(0.02)
    time.sleep(0.5)
    tick = os.sysconf("SC_CLK_TCK")

    def threads():
        out = {}
        for t in os.listdir(f"/proc/{d.pid}/task"):
            try:
                stat = open(f"/proc/{d.pid}/task/{t}/stat").read()
            except FileNotFoundError:
                continue
            f = stat.rsplit(")", 1)[1].split()
            out[t] = (stat[stat.index("(") + 1:stat.rindex(")")], int(f[11]) + int(f[12]))
        return out

    def total():
        f = open(f"/proc/{d.pid}/stat").read().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])

    before, c0, t0 = threads(), total(), time.time()
    for i in range(a.burst):
        os.rename(os.path.join(root, "incoming", f"b{i}.md"), os.path.join(root, "briefs", f"b{i}.md"))
    journal = os.path.join(root, ".baton/journal/journal.jsonl")
    while open(journal, "rb").read().count(b'"task.finished"') < a.burst:
        time.sleep(0.05)
    t1, after, c1 = time.time(), threads(), total()
    d.terminate()
    d.wait()
    per = collections.Counter()
    for t, (comm, cpu) in after.items():
        per[comm] += cpu - before.get(t, (comm, 0))[1]
    print(f"{a.burst} tasks at {a.burst / (t1 - t0):.0f}/s, daemon CPU {(c1 - c0) / tick / a.burst * 1e6:.0f} us per task")
    for comm, cpu in per.most_common():
        if cpu:
            print(f"  {comm:<20} {cpu / tick / a.burst * 1e6:6.0f} us per task")


if __name__ == "__main__":
    main()
