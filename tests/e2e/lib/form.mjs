// One page workout shared by the client tests: a form typed into and
// clicked, a value evaluated, a screenshot decoded.
import assert from 'node:assert/strict';
import { decodePng } from './png.mjs';

export const FORM_HTML = `<!doctype html><title>Kindling form</title>
<form id="f" onsubmit="event.preventDefault(); document.getElementById('out').textContent = 'Hello, ' + document.getElementById('name').value;">
  <input id="name" autocomplete="off"><button id="go" type="submit">Go</button>
</form><p id="out"></p>`;

// Works for both a Playwright page and a Puppeteer page.
export async function exerciseForm(page, { type, text, screenshot }) {
  await page.setContent(FORM_HTML);
  await type('#name', 'Kindling');
  await page.click('#go');
  assert.equal(await text('#out'), 'Hello, Kindling');
  assert.equal(await page.evaluate(() => document.title), 'Kindling form');
  assert.equal(await page.evaluate(() => 6 * 7), 42);
  const png = await screenshot();
  const header = decodePng(Buffer.from(png));
  assert.ok(header.width > 100 && header.height > 100, `screenshot is ${header.width}x${header.height}`);
}
