#!/usr/bin/env python3
"""kindling-vmm snapshot restore: File vs Uffd 4 KiB vs Uffd 2 MiB (+ prefetch).

Boots tests/guests/counter.elf (it rewrites one word in every 4 KiB page of
RAM above 4 MiB per round, printing "KT COUNT n" after each), pauses it,
takes a Full snapshot, and restores it in fresh kindling-vmm processes, one
at a time, with each memory backend:

  File          MAP_PRIVATE of the memory file, 4 KiB pages
  Uffd 4K       anonymous memory, in-process userfaultfd handler
  Uffd 4K+pf    the same, the hot-page list recorded by a first restore prefetched
  Uffd 2M       hugetlbfs memory (the snapshot of a huge_pages "2M" guest)
  Uffd 2M+pf    the same with its hot-page list

Per restore: the PUT /snapshot/load round trip as the client sees it, the
VMM's own load-call-to-vCPUs-running (kindling_vmm_snapshot_load_to_running_us),
the time from sending the load until the guest's first full round is printed
(it has then read and written its whole working set), and uffd faults.

Each restoring VMM process is started 300 ms before its load request
(--settle-ms), as a standby process in a pool would be, so the KVM VM it
prepares in the background at startup is ready; --settle-ms 0 measures a
process started on demand.

Huge pages: the script reserves what it needs in /proc/sys/vm/nr_hugepages
(root) and gives them back; without them the 2M rows are skipped.

Usage: bench/vmm/run_snapshot_bench.py BUILD_DIR [--mem-mib 64] [--runs 10]
"""
import argparse, json, os, platform, re, socket, statistics, subprocess, tempfile, time


def http(sock_path, method, path, body=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else b""
    req = (f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n").encode() + data
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(sock_path)
    s.sendall(req)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    status = int(out.split(b" ", 2)[1])
    return status, out.split(b"\r\n\r\n", 1)[1].decode(errors="replace")


class Vmm:
    def __init__(self, binary, tmp, name):
        self.sock = os.path.join(tmp, name + ".sock")
        self.serial = os.path.join(tmp, name + ".serial")
        self.metrics = os.path.join(tmp, name + ".metrics")
        for p in (self.sock, self.serial, self.metrics):
            if os.path.exists(p):
                os.unlink(p)
        self.proc = subprocess.Popen([binary, "--api-sock", self.sock, "--serial-out", self.serial,
                                      "--metrics-path", self.metrics, "--id", name],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.sock):
            if time.monotonic() > deadline:
                raise RuntimeError("VMM did not create its API socket")
            time.sleep(0.002)

    def put(self, path, body):
        return http(self.sock, "PUT", path, body)

    def counts(self):
        try:
            with open(self.serial) as f:
                return [int(m) for m in re.findall(r"KT COUNT (\d+) salt \S+ bad (?:0)\b", f.read())]
        except FileNotFoundError:
            return []

    def bad(self):
        with open(self.serial) as f:
            return [int(m) for m in re.findall(r"KT COUNT \d+ salt \S+ bad (\d+)", f.read()) if int(m) != 0]

    def wait_count(self, after, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            c = self.counts()
            if c and c[-1] > after:
                return time.monotonic()
            time.sleep(0.001)
        raise RuntimeError("guest did not count")

    def metrics_now(self):
        self.put("/actions", {"action_type": "FlushMetrics"})
        with open(self.metrics) as f:
            return json.loads(f.read().strip().splitlines()[-1])

    def close(self):
        self.proc.kill()
        self.proc.wait()


def make_snapshot(binary, guest, tmp, mem_mib, huge, tag, read_only=False):
    vm = Vmm(binary, tmp, "source-" + tag)
    assert vm.put("/boot-source", {"kernel_image_path": guest})[0] == 204
    assert vm.put("/machine-config", {"vcpu_count": 1, "mem_size_mib": mem_mib, "huge_pages": "2M" if huge else "None"})[0] == 204
    assert vm.put("/actions", {"action_type": "InstanceStart"})[0] == 204
    vm.wait_count(1)
    if read_only:
        # The guest stops writing (a key at the i8042): restored VMs only read.
        assert vm.put("/actions", {"action_type": "SendCtrlAltDel"})[0] == 204
        deadline = time.monotonic() + 30
        while "read-only" not in open(vm.serial).read():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        vm.wait_count(vm.counts()[-1] + 1)
    assert vm.put("/snapshot/create", {"snapshot_path": "x", "mem_file_path": "y"})[0] == 400  # not paused
    assert http(vm.sock, "PATCH", "/vm", {"state": "Paused"})[0] == 204
    last = vm.counts()[-1]
    snap, mem = os.path.join(tmp, tag + ".snap"), os.path.join(tmp, tag + ".mem")
    st, body = vm.put("/snapshot/create", {"snapshot_type": "Full", "snapshot_path": snap, "mem_file_path": mem})
    assert st == 204, body
    vm.close()
    return snap, mem, last


def restore_once(binary, tmp, snap, mem, last, backend, extra=None, name="r", settle_s=0.3):
    vm = Vmm(binary, tmp, name)
    # A standby VMM process, as a pool keeps them: it has prepared its KVM VM
    # (irqchip, PIT) in the background by the time a restore is asked of it.
    time.sleep(settle_s)
    mb = {"backend_type": backend, "backend_path": mem}
    mb.update(extra or {})
    t0 = time.monotonic()
    st, body = vm.put("/snapshot/load", {"snapshot_path": snap, "mem_backend": mb, "resume_vm": True})
    t1 = time.monotonic()
    assert st == 204, body
    t2 = vm.wait_count(last)
    m = vm.metrics_now()
    if vm.bad():
        raise RuntimeError("restored guest found bad pages: " + str(vm.bad()))
    return vm, {"api_ms": (t1 - t0) * 1e3, "running_ms": m["kindling_vmm_snapshot_load_to_running_us"] / 1e3,
                "round_ms": (t2 - t0) * 1e3, "faults": m["kindling_vmm_uffd_faults_total"],
                "prefetched": m["kindling_vmm_uffd_prefetched_pages_total"]}


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


class HugePages:
    def __init__(self, need):
        self.orig = None
        free = self.free()
        if free >= need:
            self.ok = True
            return
        try:
            with open("/proc/sys/vm/nr_hugepages") as f:
                self.orig = int(f.read())
            with open("/proc/sys/vm/nr_hugepages", "w") as f:
                f.write(str(self.orig + need - free))
        except OSError:
            self.ok = False
            return
        self.ok = self.free() >= need

    @staticmethod
    def free():
        with open("/proc/meminfo") as f:
            return int(re.search(r"HugePages_Free:\s+(\d+)", f.read()).group(1))

    def release(self):
        if self.orig is not None:
            with open("/proc/sys/vm/nr_hugepages", "w") as f:
                f.write(str(self.orig))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--mem-mib", type=int, default=64)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--settle-ms", type=int, default=300)
    ap.add_argument("--pss-vms", type=int, default=10)
    args = ap.parse_args()
    binary = os.path.join(args.build, "src/vmm/kindling-vmm")
    guest = os.path.join(args.build, "tests/guests/counter.elf")
    rows = []
    with tempfile.TemporaryDirectory(prefix="kindling-snapbench-") as tmp:
        hp = HugePages(2 * args.mem_mib // 2 + 4)
        try:
            snap4, mem4, last4 = make_snapshot(binary, guest, tmp, args.mem_mib, False, "4k")
            modes = [("File", snap4, mem4, last4, "File", None), ("Uffd 4K", snap4, mem4, last4, "Uffd", None)]
            hot4 = os.path.join(tmp, "4k.hot")
            vm, _ = restore_once(binary, tmp, snap4, mem4, last4, "Uffd", {"record_hot_pages": True}, "rec4k")
            assert vm.put("/snapshot/hot-pages", {"hot_pages_path": hot4})[0] == 204
            vm.close()
            modes.append(("Uffd 4K+prefetch", snap4, mem4, last4, "Uffd", {"hot_pages_path": hot4}))
            if hp.ok:
                snap2, mem2, last2 = make_snapshot(binary, guest, tmp, args.mem_mib, True, "2m")
                hot2 = os.path.join(tmp, "2m.hot")
                vm, _ = restore_once(binary, tmp, snap2, mem2, last2, "Uffd", {"record_hot_pages": True}, "rec2m")
                assert vm.put("/snapshot/hot-pages", {"hot_pages_path": hot2})[0] == 204
                vm.close()
                modes += [("Uffd 2M", snap2, mem2, last2, "Uffd", None),
                          ("Uffd 2M+prefetch", snap2, mem2, last2, "Uffd", {"hot_pages_path": hot2})]
            results = {m[0]: [] for m in modes}
            # Interleaved, so a noisy neighbour on this shared host hits every mode alike.
            for _ in range(args.runs):
                for name, snap, mem, last, backend, extra in modes:
                    vm, r = restore_once(binary, tmp, snap, mem, last, backend, extra, settle_s=args.settle_ms / 1e3)
                    vm.close()
                    results[name].append(r)
            pss = {}
            if args.pss_vms:
                snapr, memr, lastr = make_snapshot(binary, guest, tmp, args.mem_mib, False, "ro", read_only=True)
                for backend in ("File", "Uffd"):
                    vms = []
                    for i in range(args.pss_vms):
                        vm, _ = restore_once(binary, tmp, snapr, memr, lastr, backend, name=f"pss{i}", settle_s=0.05)
                        http(vm.sock, "PATCH", "/vm", {"state": "Paused"})
                        vms.append(vm)
                    rss = pss_sum = 0
                    for vm in vms:
                        with open(f"/proc/{vm.proc.pid}/smaps") as f:
                            t = f.read()
                        # The guest RAM mapping: exactly the guest's size, most pages resident.
                        best = (0, 0)
                        for block in t.split("\nSize:")[1:]:
                            size = int(block.split()[0])
                            if size != args.mem_mib * 1024:
                                continue
                            r = int(re.search(r"\nRss:\s+(\d+)", block).group(1))
                            p = int(re.search(r"\nPss:\s+(\d+)", block).group(1))
                            best = max(best, (r, p))
                        rss += best[0]
                        pss_sum += best[1]
                    for vm in vms:
                        vm.close()
                    pss[backend] = (rss, pss_sum)
        finally:
            hp.release()
    print(f"# snapshot restore, counter guest, {args.mem_mib} MiB (working set: every page above 4 MiB), "
          f"{args.runs} runs each, VMM started {args.settle_ms} ms before the load, {platform.node()} ({os.cpu_count()} CPUs), kernel {platform.release()}")
    print("| backend | load API p50 / p99 ms | load→vCPUs running p50 / p99 ms | load→working set touched p50 / p99 ms | faults p50 | prefetched pages |")
    print("|---|---|---|---|---|---|")
    for name, rs in results.items():
        col = lambda k: [r[k] for r in rs]
        print(f"| {name} | {pct(col('api_ms'), 50):.2f} / {pct(col('api_ms'), 99):.2f} | "
              f"{pct(col('running_ms'), 50):.2f} / {pct(col('running_ms'), 99):.2f} | "
              f"{pct(col('round_ms'), 50):.0f} / {pct(col('round_ms'), 99):.0f} | "
              f"{statistics.median(col('faults')):.0f} | {statistics.median(col('prefetched')):.0f} |")
    if not hp.ok:
        print("\n2 MiB rows skipped: no huge pages could be reserved.")
    if pss:
        print(f"\n{args.pss_vms} restored VMs, paused after one full read-only pass over their memory "
              f"(snapshot taken after the guest stopped writing):\n")
        print("| backend | guest RAM RSS, all VMs | guest RAM PSS, all VMs | PSS per VM |")
        print("|---|---|---|---|")
        for backend, (rss, p) in pss.items():
            print(f"| {backend} | {rss / 1024:.1f} MiB | {p / 1024:.1f} MiB | {p / 1024 / args.pss_vms:.1f} MiB |")


if __name__ == "__main__":
    main()
