// A tiny virtio-mmio (version 2) driver for test guests: finds devices from
// the `virtio_mmio.device=4K@0xADDR:IRQ` entries the VMM puts on the command
// line (as a Linux guest would), negotiates features, sets up split queues
// and moves one descriptor chain at a time by polling the used ring. No
// interrupts: the guests only check that the transport latched them.
#pragma once

#include "lib/kt.hpp"

namespace kt::virtio {

constexpr uint32_t kDeviceNet = 1, kDeviceBlock = 2, kDeviceEntropy = 4, kDeviceVsock = 19;
constexpr uint64_t kFVersion1 = 1ull << 32, kFEventIdx = 1ull << 29, kFIndirect = 1ull << 28;
constexpr uint32_t kStatusAck = 1, kStatusDriver = 2, kStatusDriverOk = 4, kStatusFeaturesOk = 8,
                   kStatusNeedsReset = 0x40, kStatusFailed = 0x80;
constexpr uint16_t kDescNext = 1, kDescWrite = 2, kDescIndirect = 4;
// Register offsets.
constexpr uint32_t kRegMagic = 0x000, kRegVersion = 0x004, kRegDeviceId = 0x008, kRegInterruptStatus = 0x060,
                   kRegInterruptAck = 0x064, kRegStatus = 0x070, kRegConfig = 0x100;

struct Desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};

// One buffer of a chain: the device reads it, or writes it when `device_writes`.
struct Buf {
  const void* addr;
  uint32_t len;
  bool device_writes;
};

struct Queue {
  uint64_t base = 0;
  uint16_t index = 0;
  uint16_t size = 0;
  Desc* desc = nullptr;
  volatile uint16_t* avail = nullptr;  // flags, idx, ring[size], used_event
  volatile uint8_t* used = nullptr;    // flags, idx, {id,len}[size], avail_event
  uint16_t avail_idx = 0;
  uint16_t last_used = 0;
};

// Memory for one queue of up to 64 entries: descriptors and avail ring in the
// first page, used ring in the second.
struct alignas(4096) QueueMemory {
  uint8_t bytes[8192];
};

// The base of the n-th device of type `device_id` announced on the command line, or 0.
uint64_t find(const StartInfo* si, uint32_t device_id, uint32_t* irq = nullptr, int nth = 0);
// Reset, ACKNOWLEDGE|DRIVER, accept VERSION_1 plus `wanted` as offered, FEATURES_OK.
bool init(uint64_t base, uint64_t wanted, uint64_t* negotiated = nullptr);
bool setup_queue(uint64_t base, uint16_t index, Queue& q, QueueMemory& mem, uint16_t size);
void driver_ok(uint64_t base);
uint32_t status(uint64_t base);
void reset(uint64_t base);
// Writes the chain into descriptors 0..n-1 and publishes it (no notify).
// `first_desc` lets a caller keep several chains in flight in disjoint slots.
void submit(Queue& q, const Buf* bufs, int n, uint16_t first_desc = 0);
// Publishes a raw, possibly malformed, head index (hostile-driver tests).
void publish_head(Queue& q, uint16_t head);
void notify(Queue& q);
// Polls for the next used entry; false after ~`spins` polls without one.
bool wait_used(Queue& q, uint32_t* id, uint32_t* len, uint64_t spins = 200'000'000);
// submit + notify + wait_used; returns the used length or -1 on timeout.
int64_t transfer(Queue& q, const Buf* bufs, int n);

}  // namespace kt::virtio
