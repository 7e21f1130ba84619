#!/usr/bin/env node
// Opens the gateway's /netcheck/ page in headless Chromium (playwright-core),
// waits for its checks to finish, screenshots it and prints one JSON line:
// {"event":"result","ok":true,"netcheck":{results,callPath,...},...}.
// Usage: node netcheck.js '<json options>'; options: pageURL, artifactsDir,
// screenshot (a file name in artifactsDir), chromiumArgs, timeoutMs.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const opts = JSON.parse(process.argv[2] || '{}');
const timeoutMs = opts.timeoutMs || 90000;

// The flags of run.js: inside the suite's namespace, with only lo, Chromium
// gathers no ICE candidate at all unless loopback is allowed.
const chromiumArgs = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
  '--autoplay-policy=no-user-gesture-required',
];

function say(obj) { process.stdout.write(JSON.stringify(obj) + '\n'); }

async function main() {
  const result = { event: 'result', ok: false, console: [], netcheck: null, screenshot: '' };
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'imsgate-chromium-'));
  let context = null;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: opts.chromium || '/usr/bin/chromium',
      headless: true,
      args: chromiumArgs.concat(opts.chromiumArgs || []),
      viewport: { width: 800, height: 600 },
    });
    const page = context.pages()[0] || await context.newPage();
    page.on('console', (m) => result.console.push(m.type() + ': ' + m.text()));
    page.on('pageerror', (e) => result.console.push('pageerror: ' + e.message));
    const started = Date.now();
    await page.goto(opts.pageURL, { timeout: 20000 });
    await page.waitForFunction(() => window.netcheck && window.netcheck.done, null, { timeout: timeoutMs, polling: 100 });
    result.ms = Date.now() - started;
    result.netcheck = await page.evaluate(() => window.netcheck);
    result.text = await page.evaluate(() => document.querySelector('main').innerText);
    if (opts.artifactsDir) {
      fs.mkdirSync(opts.artifactsDir, { recursive: true });
      result.screenshot = path.join(opts.artifactsDir, opts.screenshot || 'netcheck.png');
      await page.screenshot({ path: result.screenshot, fullPage: true });
    }
    result.ok = true;
  } catch (err) {
    result.error = String(err && err.stack || err);
  } finally {
    if (context) await context.close().catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  say(result);
}

// A hard stop so a wedged browser never outlives the Go test's timeout.
setTimeout(() => { say({ event: 'result', ok: false, error: 'netcheck.js hard timeout' }); process.exit(2); },
  timeoutMs + 30000).unref();

main().then(() => process.exit(0));
