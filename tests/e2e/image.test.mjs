// Sessions from the guest image (docs/image.md): the server mounts the image
// once, read-only, Chromium runs from it, and a stopped server leaves no
// mount and no loop device behind. `--root host` stays available.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { startServer, waitFor } from './lib/server.mjs';
import { descendants } from './lib/host.mjs';

// Mounts at `point` in this (the host's) mount namespace: [{source, fstype}].
function mountsAt(point) {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean).map((line) => {
    const f = line.split(' ');
    const dash = f.indexOf('-');
    return { point: f[4], fstype: f[dash + 1], source: f[dash + 2] };
  }).filter((m) => m.point === point);
}

function backingFile(loopDevice) {
  try { return readFileSync(`/sys/block/${loopDevice.split('/').pop()}/loop/backing_file`, 'utf8').trim(); } catch { return ''; }
}

test('image root: one read-only squashfs mount, Chromium runs from it, nothing left after stop', async () => {
  const server = await startServer({ args: ['--root', 'image', '--pool-min', '0'] });
  let loop;
  try {
    assert.match(server.stdout, /root: +image /);
    const point = `${server.dataDir}/image`;
    const mounts = mountsAt(point);
    assert.equal(mounts.length, 1, `one mount at ${point}`);
    assert.equal(mounts[0].fstype, 'squashfs');
    loop = mounts[0].source;
    assert.match(loop, /^\/dev\/loop\d+$/);
    assert.ok(backingFile(loop).endsWith('/rootfs.squashfs'), `backing file of ${loop}`);

    const sessions = [await server.createSession(), await server.createSession()];
    for (const s of sessions) {
      const browser = descendants(s.machinePid).find((p) => /chromium/.test(p.cmdline[0] || ''));
      assert.ok(browser, 'the machine runs Chromium');
      // Chromium's binary lives on the image's filesystem, not the host's /usr.
      assert.equal(statSync(`/proc/${browser.pid}/exe`).dev, statSync(point).dev, 'Chromium runs from the image');
      assert.notEqual(statSync(`/proc/${browser.pid}/exe`).dev, statSync('/usr/bin').dev);
    }
    // A real client drives it, and the image's fonts render: Liberation for
    // Arial (metric alias), a colour emoji and CJK, each by its fallback font.
    const browser = await chromium.connectOverCDP(sessions[0].cdpUrl);
    try {
      const page = await browser.contexts()[0].newPage();
      await page.setContent('<p id="latin" style="font-family:Arial">Kindling</p>' +
                            '<p id="emoji">\u{1F600}</p><p id="cjk">\u4E2D\u6587</p>');
      // The fonts Chromium really used for each node (CDP), not what CSS asked for.
      const cdp = await page.context().newCDPSession(page);
      await cdp.send('DOM.enable');
      await cdp.send('CSS.enable');
      const { root } = await cdp.send('DOM.getDocument');
      const fontsOf = async (sel) => {
        const { nodeId } = await cdp.send('DOM.querySelector', { nodeId: root.nodeId, selector: sel });
        const { fonts } = await cdp.send('CSS.getPlatformFontsForNode', { nodeId });
        return fonts.map((f) => f.familyName).join(', ');
      };
      assert.match(await fontsOf('#latin'), /Liberation Sans/);
      assert.match(await fontsOf('#emoji'), /Noto Color Emoji/);
      assert.match(await fontsOf('#cjk'), /Droid Sans Fallback/);
      await page.close();
    } finally {
      await browser.close();
    }
    // Still one mount for both machines.
    assert.equal(mountsAt(point).length, 1);
    for (const s of sessions) assert.equal((await server.release(s.id)).status, 200);
  } finally {
    const { code } = await server.stop({ keepData: true });
    assert.equal(code, 0);
  }
  assert.equal(mountsAt(`${server.dataDir}/image`).length, 0, 'image unmounted at shutdown');
  await waitFor(() => backingFile(loop) === '', { timeoutMs: 5000, what: `${loop} to be freed` });
  await server.stop();
});

test('host root stays available with --root host', async () => {
  const server = await startServer({ args: ['--root', 'host', '--pool-min', '0'] });
  try {
    assert.match(server.stdout, /root: +host directories/);
    assert.equal(mountsAt(`${server.dataDir}/image`).length, 0);
    const s = await server.createSession();
    const browser = descendants(s.machinePid).find((p) => /chromium/.test(p.cmdline[0] || ''));
    assert.ok(browser);
    assert.equal(statSync(`/proc/${browser.pid}/exe`).dev, statSync('/usr/lib/chromium/chromium').dev);
    assert.equal((await server.release(s.id)).status, 200);
  } finally {
    await server.stop();
  }
});
