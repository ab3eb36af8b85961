#!/usr/bin/env python3
"""kindling-vmm virtio devices: block throughput, vsock latency and throughput.

Boots the bench guests of tests/guests under kindling-vmm (config file, no API):
  * block_bench.elf on a file-backed read-write drive: sequential write of the
    whole disk in 256 KiB requests, FLUSH (fdatasync, cache_type Writeback),
    sequential read, 4 KiB reads at scattered offsets, GET_ID requests, bare
    MMIO register reads (one VM exit each), a loop of plain guest code. The
    guest prints a serial line before and after each phase; this script
    timestamps the lines as they arrive (the VMM writes serial bytes
    unbuffered), so a phase's time includes one serial line (~40 port exits).
  * vsock_bench.elf with PUT /vsock-style config: the host connects through
    Firecracker's protocol (CONNECT <port>) to the guest's echo port for
    round trips of 1 byte, to its sink port for host -> guest throughput and
    to its source port for guest -> host throughput.

Both guests drive the device with one request or packet in flight at a time
and poll for completion (no interrupts), so every figure is a sum of
per-request round trips: guest notify (an exit through the hypervisor),
device thread, guest memory access, host syscall.

Usage: bench/vmm/run_device_bench.py BUILD_DIR [--runs N] [--disk-mib M]
                                     [--stream-mib M] [--out results-devices.md]
"""
import argparse, json, os, platform, socket, statistics, struct, subprocess, tempfile, threading, time

MEM_MIB = 64


def now():
    return time.monotonic()


class Vmm:
    """kindling-vmm on a config file; serial lines timestamped as they arrive."""

    def __init__(self, vmm, cfg, tmp):
        path = os.path.join(tmp, "vm.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        self.proc = subprocess.Popen([vmm, "--config-file", path, "--no-api"], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.lines = []  # (time, text)
        self.cv = threading.Condition()
        self.err = b""
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self):
        buf = b""
        fd = self.proc.stdout.fileno()
        while True:
            chunk = os.read(fd, 65536)
            t = now()
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                with self.cv:
                    self.lines.append((t, line.decode(errors="replace")))
                    self.cv.notify_all()
        with self.cv:
            self.lines.append((now(), None))
            self.cv.notify_all()

    def _read_err(self):
        self.err = self.proc.stderr.read()

    def wait_line(self, prefix, timeout=300):
        deadline = now() + timeout
        with self.cv:
            while True:
                for t, line in self.lines:
                    if line is None:
                        raise RuntimeError(f"guest ended before {prefix!r}: {self.text()[-2000:]}\n{self.err[-2000:]!r}")
                    if line.startswith(prefix):
                        return t, line
                if not self.cv.wait(max(0, deadline - now())):
                    raise TimeoutError(f"no {prefix!r} on serial: {self.text()[-2000:]}")

    def text(self):
        return "\n".join(l for _, l in self.lines if l is not None)

    def wait_exit(self, timeout=60):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


def boot_config(guest, extra):
    cfg = {"boot-source": {"kernel_image_path": guest, "boot_args": "console=ttyS0"},
           "machine-config": {"vcpu_count": 1, "mem_size_mib": MEM_MIB}}
    cfg.update(extra)
    return cfg


def block_run(vmm, guest, tmp, disk_mib):
    disk = os.path.join(tmp, "disk.img")
    with open(disk, "wb") as f:  # real zeros, not a sparse file: guest writes overwrite blocks
        chunk = b"\0" * (1 << 20)
        for _ in range(disk_mib):
            f.write(chunk)
    v = Vmm(vmm, boot_config(guest, {"drives": [{"drive_id": "bench", "path_on_host": disk, "is_root_device": True,
                                                 "is_read_only": False, "cache_type": "Writeback"}]}), tmp)
    out = {}
    for phase in ("write", "flush", "read", "read4k", "getid", "mmio", "compute"):
        t0, _ = v.wait_line(f"KT INFO bench {phase} start")
        t1, line = v.wait_line(f"KT INFO bench {phase} done")
        out[phase] = (t1 - t0, int(line.split()[-1]) if line.split()[-1].isdigit() else 0)
    v.wait_line("KT END")
    code = v.wait_exit()
    text = v.text()
    os.unlink(disk)
    if code != 0 or "KT FAIL" in text:
        raise RuntimeError(f"block bench guest failed (exit {code}): {text[-2000:]}")
    return out


def uds_connect(path, port):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(f"CONNECT {port}\n".encode())
    line = b""
    while not line.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            raise RuntimeError(f"vsock CONNECT {port} refused")
        line += b
    if not line.startswith(b"OK "):
        raise RuntimeError(f"vsock CONNECT {port}: {line!r}")
    return s


def recv_exact(s, n):
    got = bytearray()
    while len(got) < n:
        b = s.recv(min(1 << 20, n - len(got)))
        if not b:
            raise RuntimeError("vsock stream ended early")
        got += b
    return bytes(got)


def vsock_run(vmm, guest, tmp, stream_mib, round_trips):
    uds = os.path.join(tmp, "v.sock")
    v = Vmm(vmm, boot_config(guest, {"vsock": {"guest_cid": 3, "uds_path": uds}}), tmp)
    v.wait_line("KT INFO vsock bench ready")
    out = {}
    # Round trips of one byte on the echo port, after a warm-up.
    s = uds_connect(uds, 1234)
    rtts = []
    for i in range(round_trips + 100):
        t0 = time.perf_counter()
        s.sendall(b"x")
        recv_exact(s, 1)
        if i >= 100:
            rtts.append(time.perf_counter() - t0)
    s.close()
    rtts.sort()
    out["rtt_p50_us"] = statistics.median(rtts) * 1e6
    out["rtt_p99_us"] = rtts[int(len(rtts) * 0.99)] * 1e6
    n = stream_mib << 20
    # Host -> guest: the count, then n bytes; the guest answers 'K' after the last.
    s = uds_connect(uds, 1235)
    payload = b"\xa5" * (1 << 20)
    t0 = time.perf_counter()
    s.sendall(struct.pack("<Q", n))
    for _ in range(stream_mib):
        s.sendall(payload)
    if recv_exact(s, 1) != b"K":
        raise RuntimeError("sink did not acknowledge")
    out["h2g_MBps"] = n / (time.perf_counter() - t0) / 1e6
    s.close()
    # Guest -> host: the count, then read n bytes.
    s = uds_connect(uds, 1236)
    t0 = time.perf_counter()
    s.sendall(struct.pack("<Q", n))
    recv_exact(s, n)
    out["g2h_MBps"] = n / (time.perf_counter() - t0) / 1e6
    s.close()
    try:
        uds_connect(uds, 1299)  # the guest quits; the VMM answers nothing
    except (RuntimeError, OSError):
        pass
    v.wait_line("KT END")
    code = v.wait_exit()
    if code != 0 or "KT FAIL" in v.text():
        raise RuntimeError(f"vsock bench guest failed (exit {code}): {v.text()[-2000:]}")
    return out


def med(xs):
    return statistics.median(xs)


def span(xs, fmt):
    return f"{fmt.format(med(xs))} ({fmt.format(min(xs))}-{fmt.format(max(xs))})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--disk-mib", type=int, default=256)
    ap.add_argument("--stream-mib", type=int, default=128)
    ap.add_argument("--round-trips", type=int, default=2000)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    vmm = os.path.join(a.build_dir, "src/vmm/kindling-vmm")
    guests = os.path.join(a.build_dir, "tests/guests")
    blk = {k: [] for k in ("write", "flush", "read", "read4k", "getid", "mmio", "compute")}
    vs = {k: [] for k in ("rtt_p50_us", "rtt_p99_us", "h2g_MBps", "g2h_MBps")}
    load0 = open("/proc/loadavg").read().split()[0]
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(a.runs):
            r = block_run(vmm, os.path.join(guests, "block_bench.elf"), tmp, a.disk_mib)
            for k, v in r.items():
                blk[k].append(v)
            r = vsock_run(vmm, os.path.join(guests, "vsock_bench.elf"), tmp, a.stream_mib, a.round_trips)
            for k, v in r.items():
                vs[k].append(v)

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    mbps = lambda phase: [b / t / 1e6 for t, b in blk[phase]]
    per_op_us = lambda phase, ops: [t / ops * 1e6 for t, _ in blk[phase]]
    lines = [
        "# kindling-vmm virtio devices: block and vsock",
        "",
        f"Machine: {cpu}, {os.cpu_count()} CPUs, {mem_gib:.0f} GiB, kernel {platform.release()}, "
        f"{'nested kvm_pvm' if os.path.exists('/sys/module/kvm_pvm') else 'KVM'}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. {a.runs} runs, median (min-max). "
        f"Load average at the start {load0}, at the end {open('/proc/loadavg').read().split()[0]}.",
        f"Guests: tests/guests block_bench.elf and vsock_bench.elf, {MEM_MIB} MiB, 1 vCPU; one request or packet",
        "in flight, completion by polling. `bench/vmm/run_device_bench.py` "
        f"--runs {a.runs} --disk-mib {a.disk_mib} --stream-mib {a.stream_mib} --round-trips {a.round_trips}.",
        "",
        f"## Block (file-backed drive of {a.disk_mib} MiB in the host page cache, cache_type Writeback)",
        "",
        "| | figure |",
        "|---|---|",
        f"| sequential write, 256 KiB requests (MB/s) | {span(mbps('write'), '{:.0f}')} |",
        f"| sequential read, 256 KiB requests (MB/s) | {span(mbps('read'), '{:.0f}')} |",
        f"| FLUSH after the write (fdatasync of {a.disk_mib} MiB, ms) | {span([t * 1e3 for t, _ in blk['flush']], '{:.1f}')} |",
        f"| scattered 4 KiB reads, queue depth 1 (µs per read) | {span(per_op_us('read4k', 2000), '{:.1f}')} |",
        f"| GET_ID, no file I/O (µs per request) | {span(per_op_us('getid', 2000), '{:.1f}')} |",
        f"| one MMIO register read, a bare VM exit to the VMM (µs) | {span(per_op_us('mmio', 2000), '{:.1f}')} |",
        f"| guest code alone: one iteration of a 4-instruction loop, no exit (ns) | {span([x * 1e3 for x in per_op_us('compute', 100000)], '{:.0f}')} |",
        "",
        "## vsock (Firecracker's Unix-socket protocol, host client in Python)",
        "",
        "| | figure |",
        "|---|---|",
        f"| 1-byte echo round trip, p50 (µs) | {span(vs['rtt_p50_us'], '{:.0f}')} |",
        f"| 1-byte echo round trip, p99 (µs) | {span(vs['rtt_p99_us'], '{:.0f}')} |",
        f"| host -> guest stream, {a.stream_mib} MiB (MB/s) | {span(vs['h2g_MBps'], '{:.0f}')} |",
        f"| guest -> host stream, {a.stream_mib} MiB (MB/s) | {span(vs['g2h_MBps'], '{:.0f}')} |",
    ]
    out = "\n".join(lines) + "\n"
    print(out)
    if a.out:
        with open(a.out, "w") as f:
            f.write(out)


if __name__ == "__main__":
    main()
