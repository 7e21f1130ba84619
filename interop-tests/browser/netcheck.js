#!/usr/bin/env node
// Opens the gateway's /netcheck/ page in headless Chromium (playwright-core),
// waits for its checks to finish, screenshots it and prints one JSON line:
// {"event":"result","ok":true,"netcheck":{results,callPath,...},...}.
// Usage: node netcheck.js '<json options>'; options: pageURL, artifactsDir,
// screenshot (a file name in artifactsDir), chromiumArgs, timeoutMs.
'use strict';

const fs = require('fs');
const path = require('path');
const { runInChromium, hardStop } = require('./chromium');

const opts = JSON.parse(process.argv[2] || '{}');
const timeoutMs = opts.timeoutMs || 90000;

async function main() {
  const result = { event: 'result', ok: false, console: [], netcheck: null, screenshot: '' };
  await runInChromium(opts, { viewport: { width: 800, height: 600 } }, result, async (page) => {
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
  });
}

hardStop('netcheck.js', timeoutMs + 30000);

main().then(() => process.exit(0));
