// End-to-end tests of the web console in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core; no browser is downloaded), against a relay started by
// tests/console.rs. Usage:
//   node e2e.mjs <scenario>   with CONSOLE_URL (http://127.0.0.1:PORT/), RELAY_WS
//   (ws://127.0.0.1:PORT) and ARTIFACTS (screenshot directory) set; bridge_down also needs
//   MOSQUITTO_PID. Prints `ok: ...` per check and `figure: ...` per measurement; exits 0 when
//   every check passed, 1 with the reason otherwise. Every wait is bounded.
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';

const require = createRequire(new URL('../../console/package.json', import.meta.url));
const { chromium } = require('playwright-core');
const { Clasp } = require('@clasp-to/core');

const scenario = process.argv[2];
const consoleUrl = process.env.CONSOLE_URL;
const relayWs = process.env.RELAY_WS;
const artifacts = process.env.ARTIFACTS;
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
if (!scenario || !consoleUrl || !relayWs || !artifacts) {
  console.log('usage: CONSOLE_URL=... RELAY_WS=... ARTIFACTS=... node e2e.mjs <load|fader|bridge_down|scale>');
  process.exit(2);
}
if (typeof WebSocket === 'undefined') {
  console.log('this Node has no global WebSocket: run it with --experimental-websocket (Node 20) or Node >= 22');
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
// The client logs every ACK at debug level: expected, kept out of the output.
console.debug = () => {};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ok = (what) => console.log(`ok: ${what}`);
const figure = (what) => console.log(`figure: ${what}`);
const clients = [];

async function client(name, token) {
  const c = new Clasp(relayWs, { name, reconnect: false, ...(token ? { token } : {}) });
  await c.connect(5000);
  clients.push(c);
  return c;
}

/** Polls `check` (sync or async) every 20 ms until it returns truthy, at most `ms`. */
async function until(what, ms, check) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(20);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${last})`);
}

const external = [];
let expectRefusals = false;
let expectOutage = false;
async function openConsole(browser, query = '', waitOpen = true) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  // The page must work offline: anything not on loopback is refused and counted.
  await context.route('**/*', (route) => {
    const host = new URL(route.request().url()).hostname;
    if (host === '127.0.0.1' || host === 'localhost') return route.continue();
    external.push(route.request().url());
    return route.abort();
  });
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => {
    // A limited token is refused by the admin listings: Chromium logs each 401/403.
    const refused = /Failed to load resource: .* (401|403)/.test(m.text());
    // While the relay is down (reconnect scenario) Chromium logs each refused connection.
    const outage = /ERR_CONNECTION_REFUSED|WebSocket connection to .* failed/.test(m.text());
    if (m.type() === 'error' && !(expectRefusals && refused) && !(expectOutage && outage)) pageErrors.push(m.text());
  });
  await page.goto(consoleUrl + query, { timeout: 15000 });
  if (waitOpen) await page.waitForSelector('#status[data-state="open"]', { timeout: 10000 });
  return { page, pageErrors };
}

const row = (address) => `.row[data-address="${address}"]`;
const shot = (page, name) => page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: false });

/** Waits in the page (checking every animation frame) until the row shows `text`; returns the epoch ms it did. */
function seenAt(page, address, text, ms) {
  return page.evaluate(
    ([sel, text, ms]) =>
      new Promise((resolve, reject) => {
        const deadline = performance.now() + ms;
        const tick = () => {
          const el = document.querySelector(sel);
          if (el && el.textContent.includes(text)) return resolve(performance.timeOrigin + performance.now());
          if (performance.now() > deadline) return reject(new Error(`${sel} never showed ${text}`));
          requestAnimationFrame(tick);
        };
        tick();
      }),
    [row(address), text, ms],
  );
}

async function load(page) {
  assert.equal(await page.title(), 'CLASP console');
  ok('the page loads from the relay and its CLASP session opens');
  await until('federation panel', 5000, () => page.locator('#federation').textContent().then((t) => t.includes('no federation links')));
  ok('federation panel says there are no links');

  const writer = await client('e2e-writer');
  // A value set by a CLASP client shows up; the figure is the time from set() to the frame
  // that shows it (the bound asserted is a generous liveness one), 40 ms apart.
  const delays = [];
  for (let i = 1; i <= 20; i++) {
    const v = i / 40;
    const text = v.toFixed(3);
    const t0 = Date.now();
    const seen = seenAt(page, '/e2e/dimmer', text, 2000);
    writer.set('/e2e/dimmer', v);
    delays.push((await seen) - t0);
    // Writes closer than 1/30 s to one address are held by the console's max rate: space
    // them so the figure is the path's latency, not the hold.
    await sleep(40);
  }
  delays.sort((a, b) => a - b);
  figure(`set-to-visible latency over ${delays.length} sets: median ${delays[10].toFixed(1)} ms, max ${delays.at(-1).toFixed(1)} ms`);
  ok('values set by a CLASP client appear in the tree (each within 2 s)');

  writer.set('/e2e/stage/on', true);
  writer.set('/e2e/stage/label', 'house');
  await page.waitForSelector(`${row('/e2e/stage/on')} .toggle:has-text("on")`, { timeout: 2000 });
  await page.waitForSelector(`${row('/e2e/stage/label')} .text:has-text("house")`, { timeout: 2000 });
  ok('booleans show as toggles, strings as text');

  // The writer column names the client that wrote last (via the sessions listing).
  await until('writer name', 5000, () => page.locator(`${row('/e2e/dimmer')} .c-writer`).textContent().then((t) => t === 'e2e-writer'));
  ok('the writer column names the last writer');
  const rev = await page.locator(`${row('/e2e/dimmer')} .c-rev`).textContent();
  assert.equal(rev, '20', 'revision after 20 sets');
  ok('the revision column counts the writes');

  // The row flashes (600 ms) when the event arrives: watch for it from before the emit.
  const flashed = page.waitForSelector(`${row('/e2e/cue/go')}.flash`, { timeout: 2000 });
  writer.emit('/e2e/cue/go', 'intro');
  await flashed;
  await until('event in the log', 2000, () => page.locator('#log').textContent().then((t) => t.includes('/e2e/cue/go') && t.includes('intro')));
  ok('events flash their row and appear in the event log');

  for (let i = 0; i < 45; i++) {
    writer.stream('/e2e/lfo', Math.sin(i / 4));
    await sleep(20);
  }
  await page.waitForSelector(`${row('/e2e/lfo')}[data-kind="stream"] canvas.spark`, { state: 'visible', timeout: 2000 });
  ok('streams draw as sparklines');

  await until('sessions panel', 5000, () => page.locator('#sessions').textContent().then((t) => t.includes('e2e-writer') && t.includes('CLASP console')));
  ok('the sessions panel lists the console and the writer');
  await until('metrics charts', 5000, () => page.locator('[data-metric="clasp_sessions"] .figure-value').textContent().then((t) => Number(t) >= 2));
  ok('relay figures from /metrics are charted');
  await page.fill('#filter', '/e2e/stage/**');
  await until('filter', 2000, () => page.evaluate(() => document.querySelectorAll('.row[data-kind="param"]:not([style*="display: none"])').length === 2));
  assert.equal(await page.locator(row('/e2e/dimmer')).count(), 0, 'filtered out');
  ok('the filter narrows the tree to a pattern');
  await page.fill('#filter', '');
  await shot(page, 'main');
}

async function fader(page) {
  const seed = await client('e2e-seed');
  seed.set('/e2e/fader/1', 0);
  seed.set('/e2e/fader/on', false);
  const subscriber = await client('e2e-subscriber');
  const got = [];
  subscriber.on('/e2e/fader/**', (value, address) => got.push({ address, value }));
  await page.waitForSelector(`${row('/e2e/fader/1')} .fader`, { timeout: 3000 });
  const box = await page.locator(`${row('/e2e/fader/1')} .fader`).boundingBox();
  assert.ok(box, 'the fader has a box');
  await page.mouse.move(box.x + box.width * 0.1, box.y + box.height / 2);
  await page.mouse.down();
  for (let i = 1; i <= 10; i++) {
    await page.mouse.move(box.x + box.width * (0.1 + 0.065 * i), box.y + box.height / 2);
    await sleep(16);
  }
  await page.mouse.up();
  const last = await until('the dragged value at the subscriber', 2000, () => {
    const mine = got.filter((g) => g.address === '/e2e/fader/1');
    const v = mine.at(-1)?.value;
    return typeof v === 'number' && Math.abs(v - 0.75) < 0.03 ? mine : null;
  });
  figure(`fader drag: ${last.length} SETs seen by the subscriber, last ${last.at(-1).value}`);
  ok('dragging a fader sets the param (seen by a CLASP subscriber)');
  await page.click(`${row('/e2e/fader/on')} .toggle`);
  await until('the toggled value at the subscriber', 2000, () => got.some((g) => g.address === '/e2e/fader/on' && g.value === true));
  ok('clicking a toggle sets the boolean');
  await shot(page, 'fader');
}

async function bridgeDown(page) {
  const pid = Number(process.env.MOSQUITTO_PID);
  assert.ok(pid > 0, 'MOSQUITTO_PID is set');
  const bridge = '#bridges tr[data-bridge]';
  await until('the MQTT bridge up', 15000, () => page.locator(`${bridge}[data-state="up"]`).count());
  const kind = await page.locator(`${bridge} td:nth-child(2)`).first().textContent();
  ok(`the bridges panel shows the ${kind} bridge up`);
  await shot(page, 'bridges-up');
  process.kill(pid, 'SIGTERM');
  const t0 = Date.now();
  await until('the MQTT bridge down', 20000, () => page.locator(`${bridge}[data-state="down"]`).count());
  figure(`bridge shown down ${Date.now() - t0} ms after its broker was killed`);
  const error = await page.locator(`${bridge} td:last-child`).first().textContent();
  ok(`the bridges panel shows the bridge down once its broker is killed (last error: ${error || 'none'})`);
  await shot(page, 'bridges-down');
}

async function federation(page) {
  const pid = Number(process.env.HUB_PID);
  assert.ok(pid > 0, 'HUB_PID is set');
  const row = '#federation tr[data-peer="hub"]';
  await until('the uplink to the hub up', 15000, () => page.locator(`${row}[data-state="up"]`).count());
  ok('the federation panel shows the uplink to the hub up');
  await shot(page, 'federation-up');
  process.kill(pid, 'SIGKILL');
  await until('the uplink down', 20000, () => page.locator(`#federation tr[data-state="down"], #federation tr[data-state="connecting"]`).count());
  ok('the federation panel shows the link down once the hub is killed');
  await shot(page, 'federation-down');
}

async function scale(page) {
  const N = 10000;
  const writer = await client('e2e-scale');
  const t0 = Date.now();
  for (let i = 0; i < N; i++) writer.set(`/scale/g${i % 100}/p${i}`, (i % 1000) / 1000);
  await until(`${N} addresses in the console`, 60000, () => page.evaluate(() => window.claspConsole.addresses).then((n) => n >= N));
  figure(`${N} new addresses written by one client were all in the console after ${Date.now() - t0} ms`);
  ok(`${N} addresses reach the console`);
  const total = await page.evaluate(() => window.claspConsole.rows);
  assert.ok(total >= N, `rows ${total}`);
  // Keep values moving while scrolling: 500 updates every 100 ms.
  let writing = true;
  const churn = (async () => {
    let k = 0;
    while (writing) {
      for (let j = 0; j < 500; j++, k++) writer.set(`/scale/g${k % 100}/p${k % N}`, Math.random());
      await sleep(100);
    }
  })();
  const frames = await page.evaluate(
    () =>
      new Promise((resolve) => {
        const tree = document.getElementById('tree');
        const times = [];
        let last = performance.now();
        let n = 0;
        const step = (now) => {
          times.push(now - last);
          last = now;
          tree.scrollTop += 600;
          if (++n < 150 && tree.scrollTop + tree.clientHeight < tree.scrollHeight) requestAnimationFrame(step);
          else resolve(times);
        };
        requestAnimationFrame(step);
      }),
  );
  writing = false;
  await churn;
  frames.sort((a, b) => a - b);
  const p50 = frames[Math.floor(frames.length / 2)];
  const p95 = frames[Math.floor(frames.length * 0.95)];
  figure(`scrolling ${N} addresses while 5000 updates/s arrive: ${frames.length} frames, median ${p50.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms, max ${frames.at(-1).toFixed(1)} ms`);
  const domRows = await page.evaluate(() => document.querySelectorAll('#tree .row').length);
  assert.ok(domRows < 300, `the list is virtualised (${domRows} row elements)`);
  figure(`${domRows} row elements in the DOM for ${total} rows`);
  await page.evaluate(() => {
    const tree = document.getElementById('tree');
    tree.scrollTop = tree.scrollHeight;
  });
  await page.waitForSelector(`${row('/scale/g99/p9999')}`, { state: 'visible', timeout: 3000 });
  ok('the list scrolls to the last address and renders it');
  await page.evaluate(() => {
    const tree = document.getElementById('tree');
    tree.scrollTop = tree.scrollHeight / 2;
  });
  await sleep(100);
  await shot(page, 'scale');
  ok(`${N} addresses render and scroll`);
}

/** With auth on: the token field's token is used; faders where its scopes do not reach lock. */
async function scopes(browser) {
  const admin = process.env.ADMIN_TOKEN;
  const limited = process.env.LIMITED_TOKEN;
  assert.ok(admin && limited, 'ADMIN_TOKEN and LIMITED_TOKEN are set');
  const seed = await client('e2e-admin', admin);
  seed.set('/e2e/open/a', 0.2);
  seed.set('/e2e/closed/b', 0.2);
  const got = [];
  seed.on('/e2e/**', (value, address) => got.push({ address, value }));

  // No token: the relay refuses the session and the page says so.
  const bare = await openConsole(browser, '', false);
  await until('refusal shown', 5000, () => bare.page.locator('#message').textContent().then((t) => t.includes('relay error 300')));
  await until('session closed', 5000, () => bare.page.locator('#status').getAttribute('data-state').then((s) => s === 'closed'));
  assert.equal(await bare.page.evaluate(() => window.claspConsole.addresses), 0, 'nothing was shown without a token');
  ok('without a token the console is refused');
  await bare.page.close();

  expectRefusals = true;
  const { page, pageErrors } = await openConsole(browser, `?token=${encodeURIComponent(limited)}`);
  await page.waitForSelector(`${row('/e2e/closed/b')} .fader`, { timeout: 5000 });
  await until('admin panels refuse the limited token', 5000, async () =>
    (await page.locator('#sessions').textContent()).includes('/api/v1/sessions: needs the admin token') &&
    (await page.locator('#bridges').textContent()).includes('/api/v1/bridges: needs the admin token'));
  ok('admin-only panels say they need the admin token');
  const drag = async (address, to) => {
    const box = await page.locator(`${row(address)} .fader`).boundingBox();
    await page.mouse.move(box.x + box.width * 0.2, box.y + box.height / 2);
    await page.mouse.down();
    for (let i = 1; i <= 6; i++) {
      await page.mouse.move(box.x + box.width * (0.2 + ((to - 0.2) * i) / 6), box.y + box.height / 2);
      await sleep(16);
    }
    await page.mouse.up();
  };
  await drag('/e2e/open/a', 0.8);
  await until('the allowed drag at the subscriber', 3000, () => got.some((g) => g.address === '/e2e/open/a' && Math.abs(g.value - 0.8) < 0.03));
  ok('a fader inside the token\'s write scope sets the param');
  await drag('/e2e/closed/b', 0.9);
  await page.waitForSelector(`${row('/e2e/closed/b')} .fader.locked`, { timeout: 3000 });
  await until('the refused fader back at the relay value', 3000, () => page.locator(`${row('/e2e/closed/b')} .num`).textContent().then((t) => t === '0.200'));
  assert.ok(!got.some((g) => g.address === '/e2e/closed/b' && g.value !== 0.2), 'no write outside the scope reached a subscriber');
  ok('a fader outside the token\'s write scope is refused, locked and reset');
  await shot(page, 'scopes');
  assert.deepEqual(pageErrors, [], 'no errors in the limited page');
  expectRefusals = false;

  const adminPage = await openConsole(browser, `?token=${encodeURIComponent(admin)}`);
  await until('sessions listed for the admin', 5000, () => adminPage.page.locator('#sessions').textContent().then((t) => t.includes('e2e-admin')));
  await until('bridges listed for the admin', 5000, () => adminPage.page.locator('#bridges').textContent().then((t) => t.includes('no bridges on this relay')));
  ok('with the admin token the sessions and bridges panels list');
  return adminPage;
}

/**
 * The relay restarts (state lost, revisions from 1 again) under an open console: the page
 * reconnects by itself and shows the new values, not the old ones. This scenario runs its
 * own relay (CLASP_BIN) so it can stop and start it on the same port.
 */
async function reconnect(browser) {
  const { spawn } = await import('node:child_process');
  const bin = process.env.CLASP_BIN;
  const port = new URL(consoleUrl).port;
  assert.ok(bin && port, 'CLASP_BIN and the port are set');
  const start = async () => {
    const child = spawn(bin, ['relay', '--host', '127.0.0.1', '--ws-port', port, '--log-level', 'warn'], { stdio: 'ignore' });
    await until('the relay listening', 10000, () => fetch(`${consoleUrl}healthz`).then((r) => r.ok).catch(() => false));
    return child;
  };
  const stop = async (child) => {
    child.kill('SIGKILL');
    await until('the relay gone', 10000, () => fetch(`${consoleUrl}healthz`).then(() => false).catch(() => true));
  };
  let relay = await start();
  try {
    const opened = await openConsole(browser);
    const page = opened.page;
    let c = await client('e2e-before');
    for (let i = 1; i <= 5; i++) c.set('/e2e/restart/x', i / 10);
    await seenAt(page, '/e2e/restart/x', '0.500', 3000);
    assert.equal(await page.locator(`${row('/e2e/restart/x')} .c-rev`).textContent(), '5');
    c.close();
    expectOutage = true;
    await stop(relay);
    await until('the page notices', 5000, () => page.locator('#status').getAttribute('data-state').then((s) => s !== 'open'));
    ok('the page shows the relay gone');
    relay = await start();
    await page.waitForSelector('#status[data-state="open"]', { timeout: 15000 });
    ok('the page reconnects by itself');
    c = await client('e2e-after');
    c.set('/e2e/restart/x', 0.25);
    await seenAt(page, '/e2e/restart/x', '0.250', 3000);
    assert.equal(await page.locator(`${row('/e2e/restart/x')} .c-rev`).textContent(), '1');
    ok('values after the restart show, with the new revisions');
    await shot(page, 'reconnected');
    return opened;
  } finally {
    relay.kill('SIGKILL');
  }
}

const scenarios = { load, fader, bridge_down: bridgeDown, federation, scale, scopes, reconnect };
let browser;
let failed = false;
const guard = setTimeout(() => {
  console.log(`FAIL: ${scenario} did not finish within 150 s`);
  process.exit(1);
}, 150000);
try {
  const run = scenarios[scenario];
  if (!run) throw new Error(`unknown scenario ${scenario}`);
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const ownPage = scenario === 'scopes' || scenario === 'reconnect';
  const { page, pageErrors } = ownPage ? await run(browser) : await openConsole(browser);
  if (!ownPage) await run(page);
  assert.deepEqual(pageErrors, [], 'no errors in the page');
  assert.deepEqual(external, [], 'no request left loopback');
  ok('no page errors and no request left loopback');
} catch (e) {
  failed = true;
  console.log(`FAIL: ${scenario}: ${e?.stack ?? e}`);
} finally {
  for (const c of clients) {
    try {
      c.close();
    } catch {}
  }
  await browser?.close().catch(() => {});
  clearTimeout(guard);
}
process.exit(failed ? 1 : 0);
