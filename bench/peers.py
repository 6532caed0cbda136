#!/usr/bin/env python3
"""Side-by-side benchmarks of Sluice and Apache Kafka with the same clients (bench/peers.sh).

Run through bench/peers.sh, which checks the Sluice binary and builds librdkafka's
rdkafka_performance; `bench/peers.sh --help` lists the options. Both servers run at once on
127.0.0.1 with their data under one temp dir; every measurement alternates which server goes
first and is repeated (--reps, default 2); the table shows medians and Sluice ÷ Kafka.

Progress goes to stderr; the table (or, with --json, one JSON object) to stdout.
"""
import argparse
import base64
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FETCH = os.path.join(REPO, "compat", "kafka", "fetch.sh")
E2E = os.path.join(HERE, "EndToEndLatency.java")
NEXMARK_JAVA = os.path.join(HERE, "NexmarkKafkaStreams.java")
CLK = os.sysconf("SC_CLK_TCK")
STARTED = time.monotonic()

WORKLOADS = ["start", "produce", "memory", "consume", "latency", "streams"]


def log(msg):
    print(f"[peers {time.monotonic() - STARTED:6.0f}s] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# /proc sampling

def proc_ticks(pid):
    """utime + stime of a process (all its threads), in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def thread_ticks(pid):
    """{tid: (name, utime + stime)} of a process's threads."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                raw = f.read()
            name = raw[raw.index("(") + 1:raw.rindex(")")]
            fields = raw.rsplit(")", 1)[1].split()
            out[tid] = (name, int(fields[11]) + int(fields[12]))
        except (OSError, ValueError, IndexError):
            pass
    return out


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def system_ticks():
    """(busy, total) ticks of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    total = sum(vals[:8])
    return total - idle, total


class CpuWindow:
    """CPU use of the servers and of the whole machine between start() and stop()."""

    def __init__(self, servers):
        self.servers = servers

    def start(self):
        self.t0 = time.monotonic()
        self.sys0 = system_ticks()
        self.p0 = {s.name: proc_ticks(s.pid) for s in self.servers}
        self.th0 = {s.name: thread_ticks(s.pid) for s in self.servers}

    def stop(self):
        wall = time.monotonic() - self.t0
        sys1 = system_ticks()
        out = {"wall_s": round(wall, 3)}
        busy = sys1[0] - self.sys0[0]
        total = sys1[1] - self.sys0[1]
        ncpu = os.cpu_count() or 1
        out["machine_busy_pct"] = round(100.0 * ncpu * busy / total, 1) if total else None
        for s in self.servers:
            p1 = proc_ticks(s.pid)
            p0 = self.p0.get(s.name)
            d = {}
            if p0 is not None and p1 is not None:
                d["cpu_pct"] = round(100.0 * (p1 - p0) / CLK / wall, 1)
            th1 = thread_ticks(s.pid)
            best = None
            for tid, (name, t1) in th1.items():
                t0 = self.th0[s.name].get(tid, (name, 0))[1]
                delta = t1 - t0
                if best is None or delta > best[1]:
                    best = (name, delta)
            if best:
                d["busiest_thread"] = best[0]
                d["busiest_thread_pct"] = round(100.0 * best[1] / CLK / wall, 1)
            out[s.name] = d
        return out


class RssSampler(threading.Thread):
    """Samples the servers' VmRSS every 100 ms; peak() since the last reset."""

    def __init__(self, servers):
        super().__init__(daemon=True)
        self.servers = servers
        self.lock = threading.Lock()
        self.peaks = {s.name: 0 for s in servers}
        self.run_peaks = {s.name: 0 for s in servers}
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(0.1):
            for s in self.servers:
                r = rss_kib(s.pid)
                if r is None:
                    continue
                with self.lock:
                    self.peaks[s.name] = max(self.peaks[s.name], r)
                    self.run_peaks[s.name] = max(self.run_peaks[s.name], r)

    def take_run_peak(self):
        with self.lock:
            p = dict(self.run_peaks)
            self.run_peaks = {s.name: 0 for s in self.servers}
        return p


# ---------------------------------------------------------------------------------------------
# Kafka protocol probes (ApiVersions v0, Metadata v1) over a plain socket

def _request(sock, api_key, version, body=b""):
    client_id = b"peers-probe"
    header = struct.pack(">hhih", api_key, version, 1, len(client_id)) + client_id
    msg = header + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    size = struct.unpack(">i", _recv_exact(sock, 4))[0]
    return _recv_exact(sock, size)


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def probe_api_versions(host, port, timeout=0.5):
    """True if the server answers ApiVersions v0 with error code 0."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            resp = _request(s, 18, 0)
            return struct.unpack(">h", resp[4:6])[0] == 0
    except (OSError, struct.error, ConnectionError):
        return False


def probe_metadata(host, port, timeout=0.5):
    """True if Metadata v1 (no topics) lists at least one broker."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            resp = _request(s, 3, 1, struct.pack(">i", 0))
            return struct.unpack(">i", resp[4:8])[0] >= 1
    except (OSError, struct.error, ConnectionError):
        return False


def wait_serving(proc, host, port, t0, limit_s=120):
    """Polls every 10 ms; returns (seconds to ApiVersions, seconds to Metadata) from t0."""
    t_api = t_meta = None
    deadline = t0 + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before serving")
        now_ok = probe_api_versions(host, port, 0.2) if t_api is None else True
        if now_ok and t_api is None:
            t_api = time.monotonic() - t0
        if t_api is not None and probe_metadata(host, port, 0.5):
            t_meta = time.monotonic() - t0
            return t_api, t_meta
        time.sleep(0.01)
    raise RuntimeError(f"not serving on {host}:{port} within {limit_s} s")


def free_port(pair=False):
    """A free loopback port (and port+1 free too if pair)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port > 65000:
            continue
        if pair:
            try:
                with socket.socket() as s2:
                    s2.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port")


def stop_proc(proc, grace=30):
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------------------------------------
# The servers

def sluice_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}


def sluice_command(binary, port, data):
    return [binary, "start", "--config", "/nonexistent",
            "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}",
            "--override", f"log.dirs={data}",
            "--override", "connect.enable=false",
            "--override", "ksql.enable=false",
            "--override", "group.initial.rebalance.delay.ms=0",
            "--override", "offsets.topic.num.partitions=1"]


class Sluice:
    name = "sluice"

    def __init__(self, binary, root):
        self.binary = binary
        self.root = root
        self.proc = None

    def start(self):
        os.makedirs(self.root, exist_ok=True)
        self.port = free_port()
        self.cmd = sluice_command(self.binary, self.port, os.path.join(self.root, "data"))
        self.log_path = os.path.join(self.root, "sluice.log")
        self.logf = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.cmd, stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=sluice_env(),
                                     start_new_session=True)
        self.pid = self.proc.pid
        for _ in range(600):
            with open(self.log_path) as f:
                m = re.search(r"Sluice listening on PLAINTEXT://(\S+)", f.read())
            if m:
                self.bootstrap = m.group(1)
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"Sluice did not start; log: {self.log_path}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc:
            stop_proc(self.proc)
            self.logf.close()

    def log_problems(self):
        return scan_log(self.log_path, r"\b(WARN|ERROR|panicked|FATAL)\b")


class Kafka:
    name = "kafka"

    def __init__(self, root):
        self.root = root
        self.pid = None

    def start(self):
        self.bootstrap, self.cmd = fetch_start_broker(self.root)
        with open(os.path.join(self.root, "broker.pid")) as f:
            self.pid = int(f.read().strip())
        with open(f"/proc/{self.pid}/comm") as f:
            comm = f.read().strip()
        if comm != "java":
            raise RuntimeError(f"Kafka's pid {self.pid} is {comm!r}, not java")

    def alive(self):
        return self.pid is not None and os.path.exists(f"/proc/{self.pid}")

    def stop(self):
        if self.pid:
            subprocess.run([FETCH, "stop-broker", self.root], capture_output=True, timeout=120)

    def log_problems(self):
        # Less the two benign warnings every fresh single-node cluster logs here.
        return [l for l in scan_log(os.path.join(self.root, "logs", "server.log"),
                                    r"\] (WARN|ERROR|FATAL) ")
                if "Performing controller activation" not in l
                and "TOPIC_ALREADY_EXISTS" not in l]


def run_checked(cmd, timeout):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {out.returncode}: "
                           f"{out.stdout[-1000:]} {out.stderr[-2000:]}")
    return out.stdout


def fetch_start_broker(root):
    """fetch.sh start-broker on a free pair of ports; one retry (a port taken meanwhile).
    Returns (bootstrap, command)."""
    for attempt in range(2):
        cmd = [FETCH, "start-broker", root, str(free_port(pair=True))]
        try:
            return run_checked(cmd, timeout=300).strip().splitlines()[-1], cmd
        except RuntimeError as e:
            log(f"Kafka start failed (attempt {attempt + 1}): {e}")
            subprocess.run([FETCH, "stop-broker", root], capture_output=True, timeout=120)
            if attempt == 1:
                raise


def scan_log(path, pattern):
    lines = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if re.search(pattern, line):
                    lines.append(line.rstrip()[:300])
    except OSError:
        pass
    return lines


# ---------------------------------------------------------------------------------------------
# Admin (confluent-kafka's AdminClient; not measured)

def admin(bootstrap):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000})


def create_topic(bootstrap, topic, partitions):
    from confluent_kafka.admin import NewTopic
    a = admin(bootstrap)
    fs = a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)],
                         operation_timeout=30, request_timeout=30)
    fs[topic].result(60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        md = a.list_topics(timeout=10)  # all topics: naming one would auto-create it
        t = md.topics.get(topic)
        if t and not t.error and len(t.partitions) == partitions and all(
                p.leader >= 0 and not p.error for p in t.partitions.values()):
            return
        time.sleep(0.1)
    raise RuntimeError(f"topic {topic} has no leaders after 60 s")


def delete_topic(bootstrap, topic):
    try:
        a = admin(bootstrap)
        a.delete_topics([topic], operation_timeout=30)[topic].result(60)
    except Exception as e:  # noqa: BLE001 - cleanup only
        log(f"deleting {topic}: {e}")


# ---------------------------------------------------------------------------------------------
# Clients

class ClientRun:
    """Runs one client command; CPU of the client from wait4's rusage."""

    def __init__(self, cmd, out_path, timeout):
        self.cmd = cmd
        self.out_path = out_path
        self.timeout = timeout

    def run(self):
        with open(self.out_path, "w") as out:
            t0 = time.monotonic()
            proc = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
            timer = threading.Timer(self.timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
            timer.start()
            try:
                _, status, ru = os.wait4(proc.pid, 0)
            finally:
                timer.cancel()
            proc.returncode = os.waitstatus_to_exitcode(status)
            self.wall = time.monotonic() - t0
        self.rc = proc.returncode
        self.client_cpu_pct = round(100.0 * (ru.ru_utime + ru.ru_stime) / self.wall, 1)
        with open(self.out_path, errors="replace") as f:
            self.output = f.read()
        return self


def java_producer_cmd(bootstrap, topic, n, size, acks):
    return [FETCH, "tool", "kafka-producer-perf-test", "--bootstrap-server", bootstrap,
            "--topic", topic, "--num-records", str(n), "--record-size", str(size),
            "--throughput", "-1", "--command-property", f"acks={acks}"]


def parse_java_producer(out, size):
    m = None
    for m in re.finditer(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), "
                         r"([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, "
                         r"(\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th", out):
        pass
    if not m:
        return None
    rps = float(m.group(2))
    return {"records": int(m.group(1)), "records_per_s": rps, "mb_per_s": rps * size / 1e6,
            "avg_latency_ms": float(m.group(4)), "p99_latency_ms": float(m.group(8))}


def rdkafka_producer_cmd(rdk, bootstrap, topic, n, size, acks):
    return [rdk, "-P", "-t", topic, "-b", bootstrap, "-s", str(size), "-c", str(n),
            "-a", "-1" if acks == "all" else str(acks), "-X", "linger.ms=5"]


def parse_rdkafka_producer(out, size):
    m = None
    for m in re.finditer(r"% (\d+) messages produced \((\d+) bytes\), (\d+) delivered "
                         r"\(offset (-?\d+), (\d+) failed\) in (\d+)ms: (\d+) msgs/s", out):
        pass
    if not m:
        return None
    delivered, failed, ms = int(m.group(3)), int(m.group(5)), int(m.group(6))
    if ms <= 0:
        return None
    rps = delivered * 1000.0 / ms
    return {"records": delivered, "failed": failed, "records_per_s": rps,
            "mb_per_s": rps * size / 1e6}


def java_consumer_cmd(bootstrap, topic, n, group):
    return [FETCH, "tool", "kafka-consumer-perf-test", "--bootstrap-server", bootstrap,
            "--topic", topic, "--num-records", str(n), "--group", group, "--timeout", "30000"]


def parse_java_consumer(out, size):
    lines = [l for l in out.splitlines() if l.strip()]
    for i, line in enumerate(lines):
        if line.startswith("start.time") and i + 1 < len(lines):
            keys = [k.strip() for k in line.split(",")]
            vals = [v.strip() for v in lines[i + 1].split(",")]
            d = dict(zip(keys, vals))
            try:
                n = int(d["data.consumed.in.nMsg"])
                fetch_ms = float(d["fetch.time.ms"])
                rebalance_ms = float(d["rebalance.time.ms"])
            except (KeyError, ValueError):
                return None
            if fetch_ms <= 0:
                return None
            rps = n * 1000.0 / fetch_ms
            return {"records": n, "records_per_s": rps, "mb_per_s": rps * size / 1e6,
                    "rebalance_ms": rebalance_ms, "fetch_ms": fetch_ms,
                    "overall_records_per_s": float(d.get("nMsg.sec", "nan"))}
    return None


def rdkafka_consumer_cmd(rdk, bootstrap, topic, n, partitions):
    cmd = [rdk, "-C", "-t", topic, "-b", bootstrap, "-o", "beginning", "-c", str(n)]
    for p in range(partitions):
        cmd += ["-p", str(p)]
    return cmd


def parse_rdkafka_consumer(out, size):
    m = None
    for m in re.finditer(r"% (\d+) messages \((\d+) bytes\) consumed in (\d+)ms", out):
        pass
    if not m:
        return None
    n, ms = int(m.group(1)), int(m.group(3))
    if ms <= 0:
        return None
    rps = n * 1000.0 / ms
    return {"records": n, "records_per_s": rps, "mb_per_s": rps * size / 1e6}


# ---------------------------------------------------------------------------------------------
# Results

def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


class Results:
    def __init__(self):
        self.rows = []       # table rows
        self.cpu = []        # produce-run CPU figures
        self.commands = []   # (label, server, command)
        self.failures = []
        self.notes = []

    def command(self, label, server, cmd):
        s = " ".join(shlex.quote(str(c)) for c in cmd)
        if (label, server, s) not in self.commands:
            self.commands.append((label, server, s))

    def add(self, workload, client, config, metric, unit, better, runs, extra=None):
        """runs: {"sluice": [values], "kafka": [values]}"""
        s, k = median(runs.get("sluice", [])), median(runs.get("kafka", []))
        ratio = s / k if s is not None and k not in (None, 0) else None
        row = {"workload": workload, "client": client, "config": config, "metric": metric,
               "unit": unit, "better": better, "sluice": s, "kafka": k,
               "ratio": ratio, "runs": runs}
        if extra:
            row.update(extra)
        self.rows.append(row)
        return row


def fmt_value(v, unit):
    if v is None:
        return "n/a"
    if unit in ("records/s", "events/s"):
        if v >= 1e6:
            return f"{v / 1e6:.2f} M/s"
        return f"{v / 1e3:.0f} k/s"
    if unit == "ms":
        return f"{v:.2f} ms" if v < 100 else f"{v:.0f} ms"
    if unit == "MB":
        return f"{v:.0f} MB" if v >= 10 else f"{v:.1f} MB"
    return f"{v:g} {unit}"


def spread(xs):
    """max/min - 1 of a server's runs, as a percentage ('-' for fewer than two runs)."""
    xs = [x for x in (xs or []) if x]
    if len(xs) < 2:
        return "-"
    return f"{100 * (max(xs) / min(xs) - 1):.0f}%"


def print_table(res, meta):
    out = []
    w = out.append
    w(f"Sluice vs Apache Kafka {meta['kafka_version']} — same clients, same machine "
      f"({meta['cpus']} CPUs, {meta['host']}), {meta['date']}")
    w(f"Sluice: {meta['sluice_bin']} (built {meta['sluice_bin_built']}; repository now: "
      f"{meta['sluice_commit']}); medians of {meta['reps']} runs "
      f"per server ({meta['consume_reps']} for consume, {meta['start_reps']} for start), "
      "alternating which server goes first; spread = max/min − 1 over a server's runs.")
    w("Ratio = Sluice ÷ Kafka. Throughput: higher is better (ratio > 1 = Sluice faster). "
      "Latency, start time, memory: lower is better (ratio < 1 = Sluice better).")
    w("")
    hdr = ("workload", "client", "Sluice", "Kafka", "Sluice ÷ Kafka", "spread S / K")
    table = []
    for r in res.rows:
        s, k = r["sluice"], r["kafka"]
        if r["unit"] == "records/s":
            size = r.get("size", 0)
            cell = lambda v: (f"{fmt_value(v, 'records/s')} ({v * size / 1e6:.0f} MB/s)"
                              if v is not None else "n/a")
        else:
            cell = lambda v, u=r["unit"]: fmt_value(v, u)
        ratio = (f"{r['ratio']:.2f}" if r["ratio"] is not None and r["ratio"] >= 0.1 else
                 f"{r['ratio']:.2g}" if r["ratio"] is not None else "n/a")
        if r["better"] == "lower" and r["ratio"] is not None:
            ratio += " (lower better)"
        table.append((f"{r['workload']}: {r['config']}" + (f" {r['metric']}" if r["metric"] else ""),
                      r["client"], cell(s), cell(k), ratio,
                      f"{spread(r['runs'].get('sluice'))} / {spread(r['runs'].get('kafka'))}"))
    widths = [max(len(hdr[i]), *(len(t[i]) for t in table)) if table else len(hdr[i])
              for i in range(len(hdr))]
    line = lambda cols: "| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(cols)) + " |"
    w(line(hdr))
    w("|" + "|".join("-" * (x + 2) for x in widths) + "|")
    for t in table:
        w(line(t))
    if res.cpu:
        w("")
        w("CPU during the produce runs (median per configuration; 100% = one core, the machine "
          f"has {meta['cpus']}): server process total / its busiest thread (name as the kernel "
          "truncates it), the client process, the whole machine / everything else (the other, "
          "idle server, CI, system).")
        chdr = ("produce run", "Sluice cpu / busiest thread", "client", "machine / others",
                "Kafka cpu / busiest thread", "client", "machine / others")
        ct = []
        for c in res.cpu:
            def sv(name):
                d = c[name]
                if not d:
                    return ("n/a", "n/a", "n/a")
                return (f"{d['cpu_pct']:.0f}% / {d['busiest_thread_pct']:.0f}% "
                        f"({d['busiest_thread']})",
                        f"{d['client_cpu_pct']:.0f}%",
                        f"{d['machine_busy_pct']:.0f}% / {d.get('others_pct', 0):.0f}%")
            ct.append((c["label"], *sv("sluice"), *sv("kafka")))
        cw = [max(len(chdr[i]), *(len(t[i]) for t in ct)) for i in range(7)]
        cl = lambda cols: "| " + " | ".join(x.ljust(cw[i]) for i, x in enumerate(cols)) + " |"
        w(cl(chdr))
        w("|" + "|".join("-" * (x + 2) for x in cw) + "|")
        for t in ct:
            w(cl(t))
    if res.notes:
        w("")
        w("Notes:")
        for n in res.notes:
            w(f"- {n}")
    if res.failures:
        w("")
        w("FAILURES:")
        for f in res.failures:
            w(f"- {f}")
    w("")
    w("Commands (first repetition; later repetitions differ only in the topic/group name; "
      "ports are this run's):")
    for label, server, cmd in res.commands:
        w(f"- [{server}] {label}: {cmd}")
    print("\n".join(out))


# ---------------------------------------------------------------------------------------------
# Workloads

class Bench:
    def __init__(self, args):
        self.args = args
        self.res = Results()
        self.work = args.work
        self.logs = os.path.join(self.work, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.servers = []
        self.seq = 0
        self.peak_1p_100 = {}   # server -> records/s of kafka-producer-perf-test acks=1 100 B 1 p
        self.consume_src = {}   # (server, size, partitions) -> (topic, records) to consume
        self.warmed = False

    def outfile(self, label):
        self.seq += 1
        safe = re.sub(r"[^A-Za-z0-9_.=-]+", "_", label)[:120]
        return os.path.join(self.logs, f"{self.seq:03d}-{safe}.out")

    def order(self, i, rep):
        s = [x for x in self.servers]
        return s if (i + rep) % 2 == 0 else s[::-1]

    # -- start time ----------------------------------------------------------------------------
    def workload_start(self):
        a = self.args
        reps = a.start_reps
        libs = subprocess.run([FETCH, "libs"], capture_output=True, text=True,
                              check=True).stdout.strip().splitlines()[-1]
        java = os.environ.get("JAVA", "java")
        heap = os.environ.get("KAFKA_HEAP_OPTS", "-Xmx1g -Xms256m").split()
        root = os.path.join(self.work, "start")
        os.makedirs(root, exist_ok=True)
        # Warm-up (untimed): one Sluice start, and a Kafka started by fetch.sh whose
        # server.properties / log4j2.properties are the template of the timed starts.
        tmpl = os.path.join(root, "kafka-template")
        log("start: warm-up (Kafka via fetch.sh start-broker, one Sluice start)")
        fetch_start_broker(tmpl)
        run_checked([FETCH, "stop-broker", tmpl], timeout=120)
        self._sluice_start_once(os.path.join(root, "sluice-warm"))
        with open(os.path.join(tmpl, "server.properties")) as f:
            props_t = f.read()
        with open(os.path.join(tmpl, "log4j2.properties")) as f:
            log4j_t = f.read()
        runs = {"sluice": {"api": [], "meta": [], "rss": []},
                "kafka": {"api": [], "meta": [], "rss": [], "format": []}}
        for rep in range(reps):
            for name in (["sluice", "kafka"] if rep % 2 == 0 else ["kafka", "sluice"]):
                try:
                    if name == "sluice":
                        r = self._sluice_start_once(os.path.join(root, f"sluice-{rep}"),
                                                    record=rep == 0)
                    else:
                        r = self._kafka_start_once(os.path.join(root, f"kafka-{rep}"), props_t,
                                                   log4j_t, tmpl, java, heap, libs,
                                                   record=rep == 0)
                except Exception as e:  # noqa: BLE001
                    self.res.failures.append(f"start {name} rep {rep}: {e}")
                    log(f"start {name} rep {rep} FAILED: {e}")
                    continue
                log(f"start {name} rep {rep}: " + ", ".join(
                    f"{k}={v * 1000:.0f}ms" if k != "rss" else f"rss={v / 1024:.0f}MB"
                    for k, v in r.items()))
                for k, v in r.items():
                    runs[name][k].append(v)
        ms = lambda xs: [x * 1000 for x in xs]
        self.res.add("start", "ApiVersions v0 probe (10 ms)", "spawn → first ApiVersions answered",
                     "", "ms", "lower", {"sluice": ms(runs["sluice"]["api"]),
                                         "kafka": ms(runs["kafka"]["api"])})
        self.res.add("start", "Metadata v1 probe (10 ms)", "spawn → Metadata lists the broker",
                     "", "ms", "lower", {"sluice": ms(runs["sluice"]["meta"]),
                                         "kafka": ms(runs["kafka"]["meta"])})
        self.res.add("start", "kafka-storage format (Kafka only)", "storage format step",
                     "", "ms", "lower", {"sluice": [], "kafka": ms(runs["kafka"]["format"])})
        self.res.add("memory", "VmRSS", "just after start (first Metadata answer)", "",
                     "MB", "lower", {"sluice": [x / 1024 for x in runs["sluice"]["rss"]],
                                     "kafka": [x / 1024 for x in runs["kafka"]["rss"]]})
        self.res.notes.append(
            "start: a fresh data dir each time; Kafka's format step (kafka-storage format, a "
            "separate JVM) is timed apart and not included in its start time; the JVM command line "
            "is fetch.sh's (" + " ".join(heap) + " -XX:+UseG1GC); one untimed warm-up start "
            "each first (page cache).")

    def _sluice_start_once(self, d, record=False):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        port = free_port()
        cmd = sluice_command(self.args.sluice_bin, port, os.path.join(d, "data"))
        if record:
            self.res.command("start", "sluice", cmd)
        with open(os.path.join(d, "sluice.log"), "w") as logf:
            t0 = time.monotonic()
            proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=sluice_env(),
                                    start_new_session=True)
            try:
                api, meta = wait_serving(proc, "127.0.0.1", port, t0)
                rss = rss_kib(proc.pid)
            finally:
                stop_proc(proc)
        return {"api": api, "meta": meta, "rss": rss}

    def _kafka_start_once(self, d, props_t, log4j_t, tmpl, java, heap, libs, record=False):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(os.path.join(d, "logs"))
        port = free_port(pair=True)
        props = props_t.replace(tmpl, d)
        old_port = re.search(r"^listeners=PLAINTEXT://127\.0\.0\.1:(\d+)", props, re.M).group(1)
        old_cport = re.search(r"^controller\.quorum\.voters=1@127\.0\.0\.1:(\d+)", props,
                              re.M).group(1)
        ports = {old_port: str(port), old_cport: str(port + 1)}
        props = re.sub(r"127\.0\.0\.1:(\d+)\b",
                       lambda m: "127.0.0.1:" + ports.get(m.group(1), m.group(1)), props)
        props_path = os.path.join(d, "server.properties")
        with open(props_path, "w") as f:
            f.write(props)
        log4j_path = os.path.join(d, "log4j2.properties")
        with open(log4j_path, "w") as f:
            f.write(log4j_t.replace(tmpl, d))
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        tool_log = os.path.join(os.path.dirname(libs), "tools-log4j2.properties")
        fmt = [java, f"-Dlog4j2.configurationFile={tool_log}", "-cp", f"{libs}/*",
               "kafka.tools.StorageTool", "format", "-t", cid, "-c", props_path]
        if record:
            self.res.command("start (format)", "kafka", fmt)
        t0 = time.monotonic()
        out = subprocess.run(fmt, capture_output=True, text=True, timeout=120)
        t_format = time.monotonic() - t0
        if out.returncode != 0:
            raise RuntimeError(f"format failed: {out.stdout[-500:]} {out.stderr[-500:]}")
        cmd = [java, *heap, "-XX:+UseG1GC", "-Djava.awt.headless=true",
               f"-Dlog4j2.configurationFile={log4j_path}",
               f"-Dkafka.logs.dir={os.path.join(d, 'logs')}", "-cp", f"{libs}/*",
               "kafka.Kafka", props_path]
        if record:
            self.res.command("start", "kafka", cmd)
        with open(os.path.join(d, "logs", "stdout.log"), "w") as logf:
            t0 = time.monotonic()
            proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
            try:
                api, meta = wait_serving(proc, "127.0.0.1", port, t0)
                rss = rss_kib(proc.pid)
            finally:
                stop_proc(proc, grace=60)
        return {"api": api, "meta": meta, "rss": rss, "format": t_format}

    # -- the two long-running servers ----------------------------------------------------------
    def start_servers(self):
        a = self.args
        sl = Sluice(a.sluice_bin, os.path.join(self.work, "sluice"))
        kf = Kafka(os.path.join(self.work, "kafka"))
        log("starting Sluice and Kafka (data under one dir: %s)" % self.work)
        sl.start()
        self.res.command("server", "sluice", sl.cmd)
        kf.start()
        self.res.command("server", "kafka", kf.cmd)
        log(f"Sluice on {sl.bootstrap} (pid {sl.pid}), Kafka on {kf.bootstrap} (pid {kf.pid})")
        self.servers = [sl, kf]

    def stop_servers(self):
        for s in self.servers:
            try:
                s.stop()
            except Exception as e:  # noqa: BLE001
                log(f"stopping {s.name}: {e}")

    def check_alive(self, where):
        for s in self.servers:
            if not s.alive():
                msg = f"{s.name} is not running any more ({where})"
                if msg not in self.res.failures:
                    self.res.failures.append(msg)
                    log(msg)

    # -- idle memory -----------------------------------------------------------------------------
    def workload_memory_idle(self):
        topics = self.standing_topics()
        for s in self.servers:
            for t, p in topics:
                create_topic(s.bootstrap, t, p)
        time.sleep(3)
        runs = {s.name: [] for s in self.servers}
        for _ in range(5):
            for s in self.servers:
                runs[s.name].append(rss_kib(s.pid) / 1024)
            time.sleep(0.2)
        self._standing = True
        self.res.add("memory", "VmRSS", f"idle, {len(topics)} topics "
                     f"({sum(p for _, p in topics)} partitions) created", "", "MB", "lower", runs)
        log("idle RSS: " + ", ".join(f"{k}={median(v):.0f}MB" for k, v in runs.items()))

    def standing_topics(self):
        return [("latency-1", 1), ("idle-6", 6)]

    def ensure_standing_topics(self):
        if getattr(self, "_standing", False):
            return
        for s in self.servers:
            for t, p in self.standing_topics():
                try:
                    create_topic(s.bootstrap, t, p)
                except Exception as e:  # noqa: BLE001 - already there
                    if "already exists" not in str(e).lower() and "TOPIC_ALREADY" not in str(e):
                        raise
        self._standing = True

    # -- produce ---------------------------------------------------------------------------------
    def records_for(self, client, size):
        a = self.args
        if client.startswith("kafka-"):
            return a.java_100 if size == 100 else a.java_1k
        return a.rdk_100 if size == 100 else a.rdk_1k

    def produce_configs(self):
        out = []
        for client in ("kafka-producer-perf-test", "rdkafka_performance"):
            for size in (100, 1024):
                for acks in ("1", "all"):
                    for parts in (1, 6):
                        out.append((client, size, acks, parts))
        return out

    def warm_up(self):
        """Untimed: each client writes and reads once on each server (JIT, page cache)."""
        if self.warmed:
            return
        a = self.args
        log("warm-up: each client produces and consumes once on each server (untimed)")
        for s in self.servers:
            topic = "warm-up"
            create_topic(s.bootstrap, topic, 6)
            n_rdk, n_java = self.records_for("rdkafka_performance", 100) // 4, \
                self.records_for("kafka-producer-perf-test", 100) // 4
            cmds = [rdkafka_producer_cmd(a.rdkafka_perf, s.bootstrap, topic, n_rdk, 100, "1"),
                    java_producer_cmd(s.bootstrap, topic, n_java, 100, "all"),
                    rdkafka_consumer_cmd(a.rdkafka_perf, s.bootstrap, topic, n_rdk + n_java, 6),
                    java_consumer_cmd(s.bootstrap, topic, n_rdk + n_java, "warm-up")]
            for cmd in cmds:
                self.res.command("warm-up", s.name, cmd)
                cr = ClientRun(cmd, self.outfile(f"warm-up-{s.name}"), a.client_timeout).run()
                if cr.rc != 0:
                    log(f"warm-up on {s.name}: rc={cr.rc} ({cr.out_path})")
            delete_topic(s.bootstrap, topic)
        self.warmed = True

    def workload_produce(self):
        a = self.args
        self.warm_up()
        sampler = RssSampler(self.servers)
        sampler.start()
        peak_cfg = {s.name: (0, "") for s in self.servers}
        for i, (client, size, acks, parts) in enumerate(self.produce_configs()):
            cfg = f"{size} B, acks={acks}, {parts} partition{'s' if parts > 1 else ''}"
            n = self.records_for(client, size)
            runs = {s.name: [] for s in self.servers}
            cpu_runs = {s.name: [] for s in self.servers}
            for rep in range(a.reps):
                for s in self.order(i, rep):
                    if not s.alive():
                        continue
                    topic = f"p{i}-{'java' if client.startswith('kafka') else 'rdk'}-{size}-" \
                            f"{acks}-{parts}-r{rep}"
                    create_topic(s.bootstrap, topic, parts)
                    if client == "kafka-producer-perf-test":
                        cmd = java_producer_cmd(s.bootstrap, topic, n, size, acks)
                        parse = parse_java_producer
                    else:
                        cmd = rdkafka_producer_cmd(a.rdkafka_perf, s.bootstrap, topic, n, size,
                                                   acks)
                        parse = parse_rdkafka_producer
                    if rep == 0:
                        self.res.command(f"produce {cfg}", s.name, cmd)
                    t_sync = time.monotonic()
                    os.sync()
                    t_sync = time.monotonic() - t_sync
                    sampler.take_run_peak()
                    win = CpuWindow(self.servers)
                    win.start()
                    cr = ClientRun(cmd, self.outfile(f"produce-{s.name}-{topic}"),
                                   a.client_timeout).run()
                    cpu = win.stop()
                    peak = sampler.take_run_peak()
                    r = parse(cr.output, size)
                    if cr.rc != 0 or r is None or r.get("failed") or r["records"] < n:
                        self.res.failures.append(
                            f"produce {client} {cfg} on {s.name} rep {rep}: rc={cr.rc}, "
                            f"parsed={r}, output {cr.out_path}")
                        log(f"produce {client} {cfg} on {s.name}: FAILED (see {cr.out_path})")
                    else:
                        runs[s.name].append(r["records_per_s"])
                        log(f"produce {client} {cfg} on {s.name} rep {rep}: "
                            f"{r['records_per_s']:,.0f} rec/s, {r['mb_per_s']:.1f} MB/s; "
                            f"server cpu {cpu[s.name].get('cpu_pct')}% (busiest thread "
                            f"{cpu[s.name].get('busiest_thread')} "
                            f"{cpu[s.name].get('busiest_thread_pct')}%), client "
                            f"{cr.client_cpu_pct}%, machine {cpu['machine_busy_pct']}%, "
                            f"rss peak {peak[s.name] / 1024:.0f} MB (sync {t_sync:.1f}s)")
                        d = dict(cpu[s.name])
                        d["client_cpu_pct"] = cr.client_cpu_pct
                        d["machine_busy_pct"] = cpu["machine_busy_pct"]
                        if None not in (cpu["machine_busy_pct"], d.get("cpu_pct")):
                            # Everything else: the other (idle) server, CI, the system.
                            d["others_pct"] = round(cpu["machine_busy_pct"] - d["cpu_pct"]
                                                    - cr.client_cpu_pct, 1)
                        d["other_server_cpu_pct"] = cpu[[x.name for x in self.servers
                                                         if x is not s][0]].get("cpu_pct")
                        d["records_per_s"] = r["records_per_s"]
                        cpu_runs[s.name].append(d)
                        if peak[s.name] > peak_cfg[s.name][0]:
                            peak_cfg[s.name] = (peak[s.name], f"{client} {cfg}")
                    ok = r is not None and cr.rc == 0 and not r.get("failed") and r["records"] >= n
                    if (ok and client == "rdkafka_performance" and acks == "1"
                            and (s.name, size, parts) not in self.consume_src):
                        # Kept: the consume workload reads these records back.
                        self.consume_src[(s.name, size, parts)] = (topic, n)
                    else:
                        delete_topic(s.bootstrap, topic)
                    self.check_alive(f"after produce {client} {cfg}")
            self.res.add("produce", client, cfg, "", "records/s", "higher", runs,
                         {"size": size, "records_per_run": n})
            if client == "kafka-producer-perf-test" and size == 100 and acks == "1" and parts == 1:
                self.peak_1p_100 = {k: median(v) for k, v in runs.items()}
            self.res.cpu.append({"label": f"{client} {cfg}",
                                 **{k: median_dict(v) for k, v in cpu_runs.items()}})
        sampler.done.set()
        self.res.add("memory", "VmRSS", "peak during the produce runs (100 ms samples)", "",
                     "MB", "lower", {k: [v / 1024] for k, v in sampler.peaks.items()},
                     {"peak_during": {k: v[1] for k, v in peak_cfg.items()}})

    # -- consume ---------------------------------------------------------------------------------
    def workload_consume(self):
        a = self.args
        self.warm_up()
        # Records to read: those of the rdkafka_performance acks=1 produce runs if the produce
        # workload ran, else written now (untimed) the same way.
        for size in (100, 1024):
            for parts in (1, 6):
                n = self.records_for("rdkafka_performance", size)
                for s in self.servers:
                    if (s.name, size, parts) in self.consume_src:
                        continue
                    topic = f"consume-{size}-{parts}"
                    create_topic(s.bootstrap, topic, parts)
                    cmd = rdkafka_producer_cmd(a.rdkafka_perf, s.bootstrap, topic, n, size, "1")
                    self.res.command(f"consume: writing {topic}", s.name, cmd)
                    cr = ClientRun(cmd, self.outfile(f"fill-{s.name}-{topic}"),
                                   a.client_timeout).run()
                    r = parse_rdkafka_producer(cr.output, size)
                    if cr.rc != 0 or not r or r["records"] < n:
                        raise RuntimeError(f"filling {topic} on {s.name} failed: {cr.out_path}")
                    self.consume_src[(s.name, size, parts)] = (topic, n)
                    log(f"wrote {n} records to {topic} on {s.name}")
        os.sync()
        i = 0
        for client in ("kafka-consumer-perf-test", "rdkafka_performance -C"):
            for size in (100, 1024):
                for parts in (1, 6):
                    cfg = f"{size} B, {parts} partition{'s' if parts > 1 else ''}"
                    runs = {s.name: [] for s in self.servers}
                    extra_runs = {s.name: [] for s in self.servers}
                    for rep in range(a.consume_reps):
                        for s in self.order(i, rep):
                            if not s.alive():
                                continue
                            topic, n = self.consume_src[(s.name, size, parts)]
                            if client == "kafka-consumer-perf-test":
                                group = f"perf-{size}-{parts}-r{rep}-{int(time.time())}"
                                cmd = java_consumer_cmd(s.bootstrap, topic, n, group)
                                parse = parse_java_consumer
                            else:
                                cmd = rdkafka_consumer_cmd(a.rdkafka_perf, s.bootstrap, topic, n,
                                                           parts)
                                parse = parse_rdkafka_consumer
                            if rep == 0:
                                self.res.command(f"consume {cfg}", s.name, cmd)
                            win = CpuWindow(self.servers)
                            win.start()
                            tag = "java" if client.startswith("kafka-") else "rdk"
                            cr = ClientRun(cmd, self.outfile(
                                f"consume-{tag}-{s.name}-{topic}-r{rep}"),
                                           a.client_timeout).run()
                            cpu = win.stop()
                            r = parse(cr.output, size)
                            if cr.rc != 0 or r is None or r["records"] < n:
                                self.res.failures.append(
                                    f"consume {client} {cfg} on {s.name} rep {rep}: rc={cr.rc}, "
                                    f"parsed={r}, output {cr.out_path}")
                                log(f"consume {client} {cfg} on {s.name}: FAILED "
                                    f"(see {cr.out_path})")
                            else:
                                runs[s.name].append(r["records_per_s"])
                                extra_runs[s.name].append({
                                    k: v for k, v in r.items()
                                    if k in ("rebalance_ms", "overall_records_per_s")} | {
                                    "server_cpu_pct": cpu[s.name].get("cpu_pct"),
                                    "client_cpu_pct": cr.client_cpu_pct})
                                log(f"consume {client} {cfg} on {s.name} rep {rep}: "
                                    f"{r['records_per_s']:,.0f} rec/s, {r['mb_per_s']:.1f} MB/s"
                                    + (f" (group join {r['rebalance_ms']:.0f} ms not counted)"
                                       if "rebalance_ms" in r else "")
                                    + f"; server cpu {cpu[s.name].get('cpu_pct')}%, client "
                                    f"{cr.client_cpu_pct}%")
                            self.check_alive(f"after consume {client} {cfg}")
                    n = self.records_for("rdkafka_performance", size)
                    self.res.add("consume", client, cfg, "", "records/s", "higher", runs,
                                 {"size": size, "records_per_run": n, "details": extra_runs})
                    i += 1
        self.res.notes.append(
            "consume: kafka-consumer-perf-test figures are its fetch.nMsg.sec (records over "
            "fetch time, i.e. without the group join, which is reported in --json as "
            "rebalance_ms); rdkafka_performance -C is librdkafka's legacy (assign) consumer "
            "reading every partition from the beginning; both read all the records of a topic "
            "written by rdkafka_performance with acks=1 (the produce runs').")

    # -- latency ---------------------------------------------------------------------------------
    def workload_latency(self):
        a = self.args
        self.ensure_standing_topics()
        self.warm_up()
        rate = a.latency_rate
        if not rate:
            if not self.peak_1p_100 or None in self.peak_1p_100.values():
                log("latency: measuring the peak (kafka-producer-perf-test acks=1, 100 B, 1 "
                    "partition) once per server")
                peaks = {}
                for s in self.servers:
                    topic = "latency-peak"
                    create_topic(s.bootstrap, topic, 1)
                    cmd = java_producer_cmd(s.bootstrap, topic, a.java_100, 100, "1")
                    self.res.command("latency peak", s.name, cmd)
                    cr = ClientRun(cmd, self.outfile(f"peak-{s.name}"), a.client_timeout).run()
                    r = parse_java_producer(cr.output, 100)
                    peaks[s.name] = r["records_per_s"] if r else None
                    delete_topic(s.bootstrap, topic)
                self.peak_1p_100 = peaks
            lower = min(v for v in self.peak_1p_100.values() if v)
            rate = int(lower / 2)
        log(f"latency: fixed rate {rate:,} records/s (half of the lower peak "
            f"{self.peak_1p_100 or 'given'})")
        runs = {m: {s.name: [] for s in self.servers} for m in ("p50_ms", "p99_ms", "p999_ms")}
        details = {s.name: [] for s in self.servers}
        for rep in range(a.reps):
            for s in self.order(0, rep):
                if not s.alive():
                    continue
                cmd = [FETCH, "java", E2E, s.bootstrap, "latency-1", str(rate),
                       str(a.latency_warmup), str(a.latency_seconds), "100"]
                if rep == 0:
                    self.res.command("latency", s.name, cmd)
                win = CpuWindow(self.servers)
                win.start()
                cr = ClientRun(cmd, self.outfile(f"latency-{s.name}"),
                               a.client_timeout + a.latency_seconds).run()
                cpu = win.stop()
                r = None
                for line in cr.output.splitlines():
                    if line.startswith("{") and "p50_ms" in line:
                        r = json.loads(line)
                if cr.rc != 0 or not r or not r["count"]:
                    self.res.failures.append(f"latency on {s.name} rep {rep}: rc={cr.rc}, "
                                             f"output {cr.out_path}")
                    log(f"latency on {s.name}: FAILED (see {cr.out_path})")
                    continue
                for m in runs:
                    runs[m][s.name].append(r[m])
                r["server_cpu_pct"] = cpu[s.name].get("cpu_pct")
                r["client_cpu_pct"] = cr.client_cpu_pct
                details[s.name].append(r)
                log(f"latency on {s.name} rep {rep}: p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
                    f"p99.9 {r['p999_ms']} ms, max {r['max_ms']} ms, achieved "
                    f"{r['achieved_rate']:,.0f}/s, lost {r['lost']}, over 10 ms {r['over_10ms']}, max at "
                    f"{r['max_at_s']:.1f} s (per-second max ms: {r.get('max_ms_per_second')}); server cpu "
                    f"{r['server_cpu_pct']}%")
                self.check_alive("after latency")
        cfg = f"1 partition, 100 B, {rate:,} rec/s, acks=1"
        for m, label in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9")):
            self.res.add("e2e latency", "EndToEndLatency.java", cfg, label, "ms", "lower",
                         runs[m], {"rate": rate, "details": details if m == "p50_ms" else None})
        self.res.notes.append(
            f"e2e latency: bench/EndToEndLatency.java, one KafkaProducer (acks=1, linger.ms=0) "
            f"sending {rate:,} records/s to partition 0 and one KafkaConsumer in the same JVM; "
            f"{a.latency_warmup} s warm-up then {a.latency_seconds} s measured; latency = "
            "consumer's nanoTime − producer's nanoTime at send().")

    # -- Streams: Nexmark q1 and q5, Sluice Streams and Kafka Streams --------------------------
    def workload_streams(self):
        """Events/s of one stream thread: `sluice bench streams --bootstrap-server` (Sluice
        Streams; it writes its own input) and bench/NexmarkKafkaStreams.java (Kafka Streams,
        over bids written by `sluice bench streams --produce-only`), each on both brokers."""
        a = self.args
        n = a.streams_events

        def last_json(out, key):
            for line in reversed(out.splitlines()):
                if line.startswith("{") and key in line:
                    return json.loads(line)
            return None

        for query, guarantee in ((q, g) for g in a.streams_guarantees for q in a.streams_queries):
            eos = guarantee == "exactly_once_v2"
            tag = f"{query}-eos" if eos else query
            # (implementation, broker) -> events/s of each run
            runs = {(impl, s.name): [] for impl in ("sluice", "kafka") for s in self.servers}
            for rep in range(a.reps):
                for i, s in enumerate(self.order(0, rep)):
                    if not s.alive():
                        continue
                    impls = ("sluice", "kafka") if (rep + i) % 2 == 0 else ("kafka", "sluice")
                    for impl in impls:
                        if impl == "sluice":
                            cmd = [a.sluice_bin, "bench", "streams", "--bootstrap-server",
                                   s.bootstrap, "--query", query, "--events", str(n),
                                   "--processing-guarantee", guarantee, "--json"]
                        else:
                            prep = [a.sluice_bin, "bench", "streams", "--bootstrap-server",
                                    s.bootstrap, "--produce-only", "--events", str(n), "--json"]
                            cr = ClientRun(prep, self.outfile(f"streams-input-{s.name}"),
                                           a.client_timeout).run()
                            made = last_json(cr.output, "bids_topic")
                            if cr.rc != 0 or not made:
                                self.res.failures.append(
                                    f"streams input on {s.name}: rc={cr.rc}, output {cr.out_path}")
                                continue
                            cmd = [FETCH, "java", NEXMARK_JAVA, s.bootstrap, query,
                                   made["bids_topic"], str(n), "100", guarantee]
                        if rep == 0:
                            self.res.command(f"streams {tag} ({impl} Streams)", s.name, cmd)
                        cr = ClientRun(cmd, self.outfile(f"streams-{tag}-{impl}-on-{s.name}"),
                                       a.client_timeout * 4).run()
                        r = last_json(cr.output, "events_per_sec")
                        if cr.rc != 0 or not r:
                            self.res.failures.append(
                                f"streams {tag} {impl} on {s.name}: rc={cr.rc}, output {cr.out_path}")
                            log(f"streams {tag}, {impl} Streams on {s.name}: FAILED "
                                f"(see {cr.out_path})")
                            continue
                        runs[(impl, s.name)].append(r["events_per_sec"])
                        log(f"streams {tag}, {impl} Streams on {s.name} rep {rep}: "
                            f"{r['events_per_sec']:,.0f} events/s")
                    self.check_alive(f"after streams {tag}")
            cfg = f"Nexmark {query}, {n:,} bids, one stream thread, {guarantee}"
            for label, sluice_side, kafka_side in (
                    ("each on its own broker", ("sluice", "sluice"), ("kafka", "kafka")),
                    ("both on the Sluice broker", ("sluice", "sluice"), ("kafka", "sluice")),
                    ("both on the Kafka broker", ("sluice", "kafka"), ("kafka", "kafka"))):
                self.res.add(f"streams {tag}", f"Sluice Streams vs Kafka Streams, {label}", cfg,
                             "", "events/s", "higher",
                             {"sluice": runs.get(sluice_side, []),
                              "kafka": runs.get(kafka_side, [])})
        self.res.notes.append(
            "streams: in these rows the Sluice column is Sluice Streams (`sluice bench streams "
            "--bootstrap-server B`) and the Kafka column Kafka Streams 4.4 "
            "(bench/NexmarkKafkaStreams.java), both with one stream thread, commit.interval.ms="
            "100, producer batch.size=65536, linger.ms=5 (at-least-once: acks=1; exactly_once_v2: "
            "a transaction per commit, acks=all), timed until "
            "every bid (and q5's repartition topic) is committed, from KafkaStreams::start "
            "returning for Sluice Streams (its group join included) and from the RUNNING state "
            "for Kafka Streams (its group join and JVM warm-up excluded); both check their "
            "output (q1: one record per bid; q5: each window's hottest auction as a plain loop "
            "finds it).")


def median_dict(ds):
    if not ds:
        return {}
    out = {}
    for k in ds[0]:
        vals = [d.get(k) for d in ds]
        if all(isinstance(v, (int, float)) for v in vals):
            out[k] = median(vals)
        else:
            out[k] = vals[0]
    return out


def git_describe():
    try:
        rev = subprocess.run(["git", "-C", REPO, "log", "-1", "--format=%h %cd",
                              "--date=format:%Y-%m-%d %H:%M"], capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=30).stdout.strip()
        return f"working tree at {rev}" + (" + local changes" if dirty else "")
    except Exception:  # noqa: BLE001
        return "unknown"


def main():
    p = argparse.ArgumentParser(prog="bench/peers.sh", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(WORKLOADS),
                   help="comma-separated workloads: start,produce,consume,latency,memory "
                        "(default: all; memory alone gives the idle RSS, its peak under load "
                        "comes with produce)")
    p.add_argument("--quick", action="store_true",
                   help="smaller sizes (records x 0.25, latency 5 s + 3 s warm-up, 2 start reps)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--reps", type=int, default=2, help="repetitions per server (default 2)")
    p.add_argument("--scale", type=float, default=None,
                   help="multiplies the records per run (default 1; --quick 0.25): "
                        "kafka-producer-perf-test 1,000,000 of 100 B / 300,000 of 1 KiB, "
                        "rdkafka_performance 6,000,000 of 100 B / 1,000,000 of 1 KiB (the "
                        "consumers read the latter)")
    p.add_argument("--consume-reps", type=int, default=3,
                   help="repetitions per server of each consume run (default 3: they are short)")
    p.add_argument("--latency-rate", type=int, default=0,
                   help="fixed e2e rate (default: half the lower measured peak)")
    p.add_argument("--latency-seconds", type=float, default=None, help="measured seconds (20)")
    p.add_argument("--latency-warmup", type=float, default=None,
                   help="warm-up seconds (10: the client JVM's JIT shows in both servers' tails "
                        "for longer than 5 s on a loaded 2-core machine)")
    p.add_argument("--start-reps", type=int, default=None, help="timed starts per server (3)")
    p.add_argument("--streams-events", type=int, default=None,
                   help="bids per Nexmark run of the streams workload (1,000,000; --quick 250,000)")
    p.add_argument("--streams-queries", default="q1,q5",
                   help="Nexmark queries of the streams workload (q1,q5)")
    p.add_argument("--streams-guarantees", default="at_least_once",
                   help="processing.guarantee values of the streams workload, comma-separated "
                        "(at_least_once; exactly_once_v2 adds rows under transactions)")
    p.add_argument("--client-timeout", type=int, default=180, help="seconds per client run")
    p.add_argument("--keep", action="store_true", help="keep the data directories")
    p.add_argument("--sluice-bin", required=True, help=argparse.SUPPRESS)
    p.add_argument("--rdkafka-perf", required=True, help=argparse.SUPPRESS)
    p.add_argument("--work", required=True, help=argparse.SUPPRESS)
    a = p.parse_args()
    q = a.quick
    a.scale = a.scale or (0.25 if q else 1.0)
    a.java_100, a.java_1k = int(1_000_000 * a.scale), int(300_000 * a.scale)
    a.rdk_100, a.rdk_1k = int(6_000_000 * a.scale), int(1_000_000 * a.scale)
    a.latency_seconds = a.latency_seconds or (5.0 if q else 20.0)
    a.latency_warmup = a.latency_warmup if a.latency_warmup is not None else (3.0 if q else 10.0)
    a.start_reps = a.start_reps or (2 if q else 3)
    a.streams_events = a.streams_events or (250_000 if q else 1_000_000)
    a.streams_queries = [x.strip() for x in a.streams_queries.split(",") if x.strip()]
    a.streams_guarantees = [x.strip() for x in a.streams_guarantees.split(",") if x.strip()]
    if any(x not in ("q1", "q5") for x in a.streams_queries):
        p.error(f"--streams-queries {a.streams_queries}: expected q1 and/or q5")
    if any(x not in ("at_least_once", "exactly_once_v2") for x in a.streams_guarantees):
        p.error(f"--streams-guarantees {a.streams_guarantees}: expected at_least_once and/or "
                "exactly_once_v2")
    only = [w.strip() for w in a.only.split(",") if w.strip()]
    bad = [w for w in only if w not in WORKLOADS]
    if bad:
        p.error(f"unknown workload(s) {bad}; choose from {WORKLOADS}")

    bench = Bench(a)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "host": platform.node(), "cpus": os.cpu_count(), "kernel": platform.release(),
        "sluice_bin": os.environ.get("PEERS_SLUICE_ORIGIN", a.sluice_bin),
        "sluice_commit": git_describe(),
        "sluice_bin_built": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.path.getmtime(
            os.environ.get("PEERS_SLUICE_ORIGIN", a.sluice_bin)))),
        "kafka_version": os.environ.get("KAFKA_VERSION") or re.search(
            r"<kafka.version>(.*)</kafka.version>",
            open(os.path.join(REPO, "compat", "kafka", "pom.xml")).read()).group(1),
        "kafka_heap": os.environ.get("KAFKA_HEAP_OPTS", "-Xmx1g -Xms256m"),
        "rdkafka_performance": a.rdkafka_perf, "reps": a.reps,
        "consume_reps": a.consume_reps, "start_reps": a.start_reps, "workloads": only,
        "records_per_run": {"kafka-producer-perf-test": {"100": a.java_100, "1024": a.java_1k},
                            "rdkafka_performance": {"100": a.rdk_100, "1024": a.rdk_1k}},
        "work_dir": a.work,
        "load_at_start": os.getloadavg(),
    }
    try:
        if "start" in only:
            bench.workload_start()
        if any(w in only for w in ("produce", "memory", "consume", "latency", "streams")):
            bench.start_servers()
            if "memory" in only:
                bench.workload_memory_idle()
            if "produce" in only:
                bench.workload_produce()
            if "consume" in only:
                bench.workload_consume()
            if "latency" in only:
                bench.workload_latency()
            if "streams" in only:
                bench.workload_streams()
            for s in bench.servers:
                probs = s.log_problems()
                if probs:
                    bench.res.notes.append(
                        f"{s.name}'s log has {len(probs)} WARN/ERROR line(s); first: "
                        + " || ".join(probs[:3]))
    except KeyboardInterrupt:
        bench.res.failures.append("interrupted")
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        bench.res.failures.append(f"aborted: {type(e).__name__}: {e}")
    finally:
        bench.stop_servers()
        if not a.keep:
            for d in ("sluice/data", "kafka/data", "start"):
                shutil.rmtree(os.path.join(a.work, d), ignore_errors=True)
            if os.path.dirname(os.path.abspath(a.sluice_bin)) == os.path.abspath(a.work):
                os.remove(a.sluice_bin)  # peers.sh's copy
    meta["elapsed_s"] = round(time.monotonic() - STARTED)
    meta["load_at_end"] = os.getloadavg()
    if bench.servers:
        bench.res.notes.insert(0, (
            f"Both servers ran at once on 127.0.0.1 with data under {a.work} (same disk); "
            f"Kafka {meta['kafka_version']} single-node KRaft via compat/kafka/fetch.sh (heap "
            f"{meta['kafka_heap']}); Sluice with group.initial.rebalance.delay.ms=0 and "
            "offsets.topic.num.partitions=1 as fetch.sh sets for Kafka; `sync` before each produce "
            "run; a fresh topic per produce run, deleted after it. "
            f"Records per produce run: kafka-producer-perf-test {a.java_100:,} of 100 B / "
            f"{a.java_1k:,} of 1 KiB, rdkafka_performance {a.rdk_100:,} / {a.rdk_1k:,}; an untimed "
            "warm-up (each client producing and consuming once per server) first. "
            "kafka-producer-perf-test runs with its defaults (acks=all means idempotent; acks=1 "
            "turns idempotence off); rdkafka_performance with librdkafka's defaults "
            "(not idempotent) except linger.ms=5 (the tool itself sets 1000 ms). "
            f"Load average at start {meta['load_at_start'][0]:.2f}, at end "
            f"{meta['load_at_end'][0]:.2f}; whole run {meta['elapsed_s']} s."))
    if a.json:
        json.dump({"meta": meta, "results": bench.res.rows, "cpu_produce": bench.res.cpu,
                   "notes": bench.res.notes, "failures": bench.res.failures,
                   "commands": [{"label": l, "server": s, "command": c}
                                for l, s, c in bench.res.commands]}, sys.stdout, indent=1)
        print()
    else:
        print_table(bench.res, meta)
    log(f"logs of the clients and servers: {a.work}")
    return 1 if bench.res.failures else 0


if __name__ == "__main__":
    sys.exit(main())
