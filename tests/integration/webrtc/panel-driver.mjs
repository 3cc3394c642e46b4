// Drives one headless Chromium tab on the ha-pbx panel (served by ha-pbx itself)
// for tests/integration/test_panel.py. One JSON command per stdin line, one JSON
// reply line ({"reply": cmd, "ok": ...}) on stdout. Elements are found as a
// user finds them: inputs by their label, buttons by their name.
import { chromium } from 'playwright-core';
import readline from 'node:readline';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// With --wav FILE the page's microphone plays FILE (the Phone page's calls).
const args = process.argv.slice(2);
const wav = args.includes('--wav') ? args[args.indexOf('--wav') + 1] : null;
const media = wav ? ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
  `--use-file-for-fake-audio-capture=${wav}`, '--autoplay-policy=no-user-gesture-required',
  '--disable-features=WebRtcHideLocalIpsWithMdns', '--allow-loopback-in-peer-connection'] : [];
const recorder = path.join(path.dirname(fileURLToPath(import.meta.url)), 'page', 'phone.js');

const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const out = obj => process.stdout.write(JSON.stringify(obj) + '\n');

const browser = await chromium.launch({
  executablePath: chromiumPath, headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', ...media],
});
let context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
let page = await context.newPage();
page.on('pageerror', e => out({ event: 'pageerror', detail: e.message }));
page.on('dialog', d => d.accept());

async function run(c) {
  switch (c.cmd) {
    case 'goto': { const r = await page.goto(c.url); return { url: page.url(), status: r && r.status() }; }
    case 'fill': await page.getByLabel(c.label, { exact: true }).filter({ visible: true }).fill(c.value); return {};
    case 'click': await page.getByRole('button', { name: c.name, exact: true }).first().click(); return {};
    case 'select': await page.getByLabel(c.label, { exact: true }).filter({ visible: true }).selectOption(c.value); return {};
    case 'click-in': await page.locator(c.selector).getByRole('button', { name: c.name, exact: true }).first().click(); return {};
    case 'download': {
      // Follows the page's own link (found by its name) and saves what the browser downloads.
      const [dl] = await Promise.all([page.waitForEvent('download', { timeout: c.timeout || 10000 }), page.getByRole('link', { name: c.name, exact: true }).click()]);
      await dl.saveAs(c.out);
      return { file: c.out, filename: dl.suggestedFilename(), url: dl.url() };
    }
    case 'click-in-row': await page.locator(`tr[data-extension="${c.row}"]`).getByRole('button', { name: c.name, exact: true }).click(); return {};
    case 'wait-button': await page.getByRole('button', { name: c.name, exact: true }).first().waitFor({ state: c.state || 'visible', timeout: c.timeout || 10000 }); return {};
    case 'eval': return { value: await page.evaluate(c.js) };
    case 'record': {
      // The Phone page's remote audio, through the test page's recorder (page/phone.js).
      if (!await page.evaluate(() => !!window.phone)) await page.addScriptTag({ path: recorder });
      const b64 = await page.evaluate(ms => { window.phone.remoteStream = window.haPbxPhone.remote; return window.phone.recordRemote(ms); }, c.ms);
      fs.writeFileSync(c.out, Buffer.from(b64, 'base64'));
      return { file: c.out };
    }
    case 'wait-text': await page.getByText(c.text).first().waitFor({ timeout: c.timeout || 10000 }); return {};
    case 'text': return { text: await page.locator(c.selector).innerText() };
    case 'visible': return { visible: await page.locator(c.selector).isVisible() };
    case 'cookies': return { cookies: await context.cookies() };
    case 'fetch': return await page.evaluate(async ([m, u, b]) => {
      const r = await fetch(u, { method: m, credentials: 'same-origin', headers: b ? { 'content-type': 'application/json' } : {}, body: b ? JSON.stringify(b) : undefined });
      return { status: r.status, body: await r.text() };
    }, [c.method, c.url, c.body || null]);
    case 'screenshot': {
      await page.setViewportSize({ width: c.width, height: c.height });
      await page.screenshot({ path: c.out, fullPage: false });
      await page.setViewportSize({ width: 1280, height: 800 });
      return { file: c.out };
    }
    case 'screenshot-element': await page.locator(c.selector).screenshot({ path: c.out }); return { file: c.out };
    case 'new-context':
      await context.close();
      context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      page = await context.newPage();
      page.on('pageerror', e => out({ event: 'pageerror', detail: e.message }));
      page.on('dialog', d => d.accept());
      return {};
    case 'quit': await browser.close(); out({ reply: 'quit', ok: true }); process.exit(0);
    default: throw new Error('unknown command ' + c.cmd);
  }
}

out({ event: 'ready' });
const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  let c;
  try { c = JSON.parse(line); } catch (e) { out({ reply: null, ok: false, error: 'bad json' }); continue; }
  try { out({ reply: c.cmd, ok: true, ...(await run(c)) }); } catch (e) { out({ reply: c.cmd, ok: false, error: String(e && e.message || e) }); }
}
await browser.close();
