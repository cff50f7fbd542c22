"""`baton ui` measured in a real browser (driven by bench/ui.sh): the event latency and
the first paint at a long history. Prints a table beside the targets of issue 16."""
import argparse, os, shutil, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(__file__))
from history import generated_history, make_config  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def start_ui(baton, root):
    p = subprocess.Popen([baton, "-w", root, "ui", "--port", "0"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    return p, p.stdout.readline().strip()


def drive(what, url, root, *args):
    out = subprocess.run(["node", os.path.join(HERE, "ui.mjs"), what, url, root, *map(str, args)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{what}: {out.stderr}")
    return [float(x) for x in out.stdout.split()]


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--baton", required=True)
    ap.add_argument("--appends", type=int, default=200)
    ap.add_argument("--tasks", type=int, default=100_000)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="baton-ui-bench-")
    try:
        # Event latency: a daemon runs, briefs are dropped one after another.
        live = os.path.join(work, "live")
        make_config(live)
        daemon = subprocess.Popen([a.baton, "-w", live, "run"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        time.sleep(1)
        ui, url = start_ui(a.baton, live)
        latency = drive("latency", url, live, a.appends)
        ui.terminate(); daemon.terminate(); daemon.wait()

        # First paint at a long history.
        long = os.path.join(work, "long")
        generated_history(long, a.tasks)
        subprocess.run([a.baton, "-w", long, "status"], stdout=subprocess.DEVNULL, check=False)
        ui, url = start_ui(a.baton, long)
        paint = drive("paint", url, long, 7)
        ui.terminate()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"| `baton ui` | p50 | p99 | target |")
    print(f"|---|---|---|---|")
    print(f"| journal append → EventSource, {len(latency)} entries (ms) | {pct(latency, 50):.1f} | {pct(latency, 99):.1f} | ≤ 50 p99 |")
    print(f"| first paint at {a.tasks:,} tasks, {len(paint)} loads (ms) | {pct(paint, 50):.0f} | {max(paint):.0f} (max) | ≤ 300 |")


if __name__ == "__main__":
    main()
