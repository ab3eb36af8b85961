#!/usr/bin/env python3
"""kindling-vmm vs qemu-system-x86_64 -M microvm, side by side in one run.

Measures, for the same PVH test guest ELF (tests/guests):
  * control-socket ready: process spawn -> API answers (kindling: GET / over
    --api-sock; QEMU: QMP greeting + qmp_capabilities on -qmp, started with -S)
  * start -> first guest serial byte: kindling: PUT /actions InstanceStart;
    QEMU: QMP "cont" (QEMU has loaded the kernel before; firmware time counts)
  * VMM RSS overhead: Rss of the process minus the guest-RAM mapping, while
    the `spin` guest runs (from /proc/PID/smaps)

Usage: bench/vmm/run_bench.py BUILD_DIR [--runs N] [--out results.md]
"""
import argparse, json, os, platform, select, socket, statistics, subprocess, tempfile, time

MEM_MIB = 64


def now():
    return time.monotonic()


def wait_connect(path, deadline):
    while now() < deadline:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            time.sleep(0.0002)
    raise TimeoutError(path)


def http(sock, method, path, body=None):
    data = json.dumps(body) if body is not None else ""
    req = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n{data}"
    sock.sendall(req.encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(4096)
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(rest) < length:
        rest += sock.recv(4096)
    return int(head.split(b" ")[1])


def wait_serial(proc, marker, deadline):
    buf = b""
    fd = proc.stdout.fileno()
    while now() < deadline:
        r, _, _ = select.select([fd], [], [], max(0, deadline - now()))
        if not r:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
        if marker in buf:
            return now(), buf
    raise TimeoutError(f"no {marker!r} on serial; got {buf[:200]!r}")


def rss_overhead_kib(pid, guest_mib):
    """(Rss, private Rss, guest Rss) in KiB, excluding the guest RAM mapping
    (the mapping of exactly guest_mib, plus QEMU's alignment slack). Private
    memory is what each extra VM really costs; the rest is shared libraries."""
    total = private = guest = 0
    in_guest = False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and "-" in parts[0] and ":" not in parts[0]:
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                size_kib = (hi - lo) // 1024
                in_guest = guest_mib * 1024 <= size_kib <= guest_mib * 1024 + 4096
            elif parts[0] == "Rss:":
                if in_guest:
                    guest += int(parts[1])
                else:
                    total += int(parts[1])
            elif parts[0] in ("Private_Clean:", "Private_Dirty:") and not in_guest:
                private += int(parts[1])
    return total, private, guest


def kill(proc):
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def kindling_run(vmm, guest, tmp, measure_rss=False, internal=None):
    sock = os.path.join(tmp, "k.sock")
    metrics = os.path.join(tmp, "k.metrics")
    for p in (sock, metrics):
        if os.path.exists(p):
            os.unlink(p)
    t0 = now()
    proc = subprocess.Popen([vmm, "--api-sock", sock, "--level", "warn", "--metrics-path", metrics],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        s = wait_connect(sock, t0 + 10)
        assert http(s, "GET", "/") == 200
        t_ready = now()
        assert http(s, "PUT", "/boot-source", {"kernel_image_path": guest}) == 204
        assert http(s, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": MEM_MIB}) == 204
        t_start = now()
        assert http(s, "PUT", "/actions", {"action_type": "InstanceStart"}) == 204
        marker = b"spinning" if measure_rss else b"KT BEGIN"
        t_byte, _ = wait_serial(proc, marker, now() + 30)
        rss = rss_overhead_kib(proc.pid, MEM_MIB) if measure_rss else None
        proc.terminate()  # SIGTERM: the VMM flushes its metrics at exit
        proc.wait(10)
        if internal is not None:
            m = json.loads(open(metrics).read().splitlines()[-1])
            internal["api_ready"].append(m["kindling_vmm_api_ready_us"] / 1e3)
            internal["start_to_byte"].append((m["kindling_vmm_first_serial_byte_us"] - m["kindling_vmm_instance_start_us"]) / 1e3)
        return (t_ready - t0) * 1e3, (t_byte - t_start) * 1e3, rss, (t_byte - t0) * 1e3
    finally:
        kill(proc)


def qemu_run(guest, tmp, measure_rss=False):
    sock = os.path.join(tmp, "q.sock")
    if os.path.exists(sock):
        os.unlink(sock)
    t0 = now()
    proc = subprocess.Popen(["qemu-system-x86_64", "-M", "microvm,accel=kvm", "-cpu", "host,-arch-capabilities",
                             "-m", str(MEM_MIB), "-smp", "1", "-display", "none", "-monitor", "none", "-serial", "stdio",
                             "-no-reboot", "-S", "-kernel", guest, "-qmp", f"unix:{sock},server=on,wait=off"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        s = wait_connect(sock, t0 + 20)
        f = s.makefile("rwb", buffering=0)
        f.readline()  # greeting
        s.sendall(b'{"execute":"qmp_capabilities"}\n')
        f.readline()
        t_ready = now()
        t_start = now()
        s.sendall(b'{"execute":"cont"}\n')
        marker = b"spinning" if measure_rss else b"KT BEGIN"
        t_byte, _ = wait_serial(proc, marker, now() + 30)
        rss = rss_overhead_kib(proc.pid, MEM_MIB) if measure_rss else None
        return (t_ready - t0) * 1e3, (t_byte - t_start) * 1e3, rss, (t_byte - t0) * 1e3
    finally:
        kill(proc)


def p50(xs):
    return statistics.median(xs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    vmm = os.path.join(a.build_dir, "src/vmm/kindling-vmm")
    hello = os.path.join(a.build_dir, "tests/guests/hello.elf")
    spin = os.path.join(a.build_dir, "tests/guests/spin.elf")
    res = {n: {"ready": [], "byte": [], "rss": [], "total": []} for n in ("kindling-vmm", "qemu microvm")}
    internal = {"api_ready": [], "start_to_byte": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(a.runs):  # interleaved, so both see the same machine load
            for name, fn in (("kindling-vmm", lambda m: kindling_run(vmm, hello if not m else spin, tmp, m, internal)),
                             ("qemu microvm", lambda m: qemu_run(hello if not m else spin, tmp, m))):
                r, b, _, total = fn(False)
                res[name]["ready"].append(r)
                res[name]["byte"].append(b)
                res[name]["total"].append(total)
        for name, fn in (("kindling-vmm", lambda: kindling_run(vmm, spin, tmp, True)), ("qemu microvm", lambda: qemu_run(spin, tmp, True))):
            for _ in range(3):
                res[name]["rss"].append(fn()[2])

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    lines = [
        "# kindling-vmm vs QEMU microvm",
        "",
        f"Machine: {cpu}, {os.cpu_count()} CPUs, kernel {platform.release()}, "
        f"{'nested kvm_pvm' if os.path.exists('/sys/module/kvm_pvm') else 'KVM'}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. {a.runs} interleaved runs, p50 (min-max).",
        f"Guest: tests/guests hello.elf (timings), spin.elf (RSS), {MEM_MIB} MiB, 1 vCPU. "
        "`qemu-system-x86_64 -M microvm,accel=kvm -cpu host,-arch-capabilities -S -qmp ...`.",
        "",
        "| | control socket ready (ms) | start -> first guest serial byte (ms) | spawn -> first guest serial byte (ms) | RSS excl. guest RAM (KiB) | private RSS excl. guest RAM (KiB) |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in res.items():
        rss = [x[0] for x in r["rss"]]
        private = [x[1] for x in r["rss"]]
        lines.append(f"| {name} | {p50(r['ready']):.2f} ({min(r['ready']):.2f}-{max(r['ready']):.2f}) "
                     f"| {p50(r['byte']):.2f} ({min(r['byte']):.2f}-{max(r['byte']):.2f}) "
                     f"| {p50(r['total']):.2f} ({min(r['total']):.2f}-{max(r['total']):.2f}) "
                     f"| {int(p50(rss))} | {int(p50(private))} (guest RAM touched: {r['rss'][0][2]} KiB) |")
    lines += [
        "",
        "Timings are taken by this script from outside (process spawn, socket polling and Python included).",
        "kindling-vmm is configured over its API between ready and start (PUT /boot-source, PUT /machine-config);",
        "QEMU gets everything on its command line and creates the VM before QMP answers, so its `cont` starts a VM",
        "that already exists, while InstanceStart waits for the VM/memory setup kindling-vmm began at PUT /machine-config.",
        f"kindling-vmm's own metrics for the same runs: main() -> API ready p50 {p50(internal['api_ready']):.3f} ms; "
        f"InstanceStart -> first serial byte p50 {p50(internal['start_to_byte']):.3f} ms "
        "(kindling_vmm_api_ready_us, kindling_vmm_first_serial_byte_us - kindling_vmm_instance_start_us).",
    ]
    out = "\n".join(lines) + "\n"
    print(out)
    if a.out:
        with open(a.out, "w") as f:
            f.write(out)


if __name__ == "__main__":
    main()
