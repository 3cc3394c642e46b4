// Drives one headless Chromium tab running page/phone.html for the Python
// tests (harness/browser.py). Protocol: one JSON command per stdin line,
// one JSON line per reply ({"reply": cmd, "ok": ...}) or page event
// ({"event": name, "detail": ...}) on stdout.
// usage: node driver.mjs --wav FILE.wav
import { chromium } from 'playwright-core';
import { buildSync } from 'esbuild';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const pageDir = path.join(here, 'page');
const args = process.argv.slice(2);
const wav = args[args.indexOf('--wav') + 1];
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const out = obj => process.stdout.write(JSON.stringify(obj) + '\n');

const bundle = path.join(pageDir, 'jssip.bundle.js');
if (!fs.existsSync(bundle)) {
  buildSync({ entryPoints: [path.join(here, 'jssip-entry.js')], bundle: true, format: 'iife', outfile: bundle, logLevel: 'error' });
}

// http://127.0.0.1 is a secure context, so getUserMedia works without TLS.
const server = http.createServer((req, res) => {
  const name = path.basename(req.url.split('?')[0]) || 'phone.html';
  fs.readFile(path.join(pageDir, name), (e, d) => {
    if (e) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'content-type': name.endsWith('.js') ? 'text/javascript' : 'text/html' });
    res.end(d);
  });
});
await new Promise(r => server.listen(0, '127.0.0.1', r));

const browser = await chromium.launch({
  executablePath: chromiumPath, headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
    `--use-file-for-fake-audio-capture=${wav}`, '--autoplay-policy=no-user-gesture-required',
    '--disable-features=WebRtcHideLocalIpsWithMdns', '--allow-loopback-in-peer-connection'],
});
let page = await browser.newPage();
page.on('console', m => {
  const t = m.text();
  if (t.startsWith('[phone] ')) out(JSON.parse(t.slice(8)));
});
page.on('pageerror', e => out({ event: 'pageerror', detail: e.message }));
await page.goto(`http://127.0.0.1:${server.address().port}/phone.html`);
out({ event: 'ready' });

async function run(c) {
  switch (c.cmd) {
    case 'start': await page.evaluate(o => phone.start(o), c); return {};
    case 'call': await page.evaluate(t => phone.call(t), c.target); return {};
    case 'answer': await page.evaluate(() => phone.answer()); return {};
    case 'dtmf': await page.evaluate(t => phone.dtmf(t), c.tones); return {};
    case 'renegotiate': return { done: await page.evaluate(u => phone.renegotiate(u), !!c.useUpdate) };
    case 'hold': return { done: await page.evaluate(on => phone.hold(on), c.on !== false) };
    case 'hangup': await page.evaluate(() => phone.hangup()); return {};
    case 'stats': return { stats: await page.evaluate(() => phone.inboundStats()) };
    case 'videostats': return { stats: await page.evaluate(() => phone.videoStats()) };
    case 'sdp': return { sdp: await page.evaluate(() => phone.sdp()) };
    case 'record': {
      const b64 = await page.evaluate(ms => phone.recordRemote(ms), c.ms);
      fs.writeFileSync(c.out, Buffer.from(b64, 'base64'));
      return { file: c.out };
    }
    case 'tap-start': await page.evaluate(() => phone.tapStart()); return {};
    case 'tap-take': {
      const frames = await page.evaluate(() => phone.tapTake());
      fs.writeFileSync(c.out, JSON.stringify(frames));
      return { file: c.out, frames: frames.length };
    }
    // Like closing the tab: no BYE, no un-REGISTER, the socket just goes.
    case 'close': await page.close({ runBeforeUnload: false }); page = null; return {};
    case 'quit': await browser.close(); server.close(); out({ reply: 'quit', ok: true }); process.exit(0);
    default: throw new Error('unknown command ' + c.cmd);
  }
}

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  let c;
  try { c = JSON.parse(line); } catch (e) { out({ reply: null, ok: false, error: 'bad json' }); continue; }
  try { out({ reply: c.cmd, ok: true, ...(await run(c)) }); } catch (e) { out({ reply: c.cmd, ok: false, error: String(e && e.message || e) }); }
}
await browser.close();
server.close();
