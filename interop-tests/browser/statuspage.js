#!/usr/bin/env node
// Opens the gateway's status page (the admin listener's /) in headless
// Chromium while a call is up: gives it the admin token it asks for, waits
// for the call in the table, opens its ladder and the three charts,
// screenshots the page and prints one JSON line:
// {"event":"result","ok":true,"page":{...what it showed}}.
// Usage: node statuspage.js '<json options>'; options: pageURL, token,
// artifactsDir, screenshot (a file name in artifactsDir), timeoutMs.
'use strict';

const fs = require('fs');
const path = require('path');
const { runInChromium, hardStop } = require('./chromium');

const opts = JSON.parse(process.argv[2] || '{}');
const timeoutMs = opts.timeoutMs || 60000;

async function main() {
  const result = { event: 'result', ok: false, console: [], page: null, screenshot: '' };
  await runInChromium(opts, { viewport: { width: 1280, height: 900 } }, result, async (page) => {
    try {
      await look(page, result);
    } finally {
      if (opts.artifactsDir) {
        fs.mkdirSync(opts.artifactsDir, { recursive: true });
        result.screenshot = path.join(opts.artifactsDir, opts.screenshot || 'status.png');
        await page.screenshot({ path: result.screenshot, fullPage: true });
      }
    }
  });
}

// look does what an operator would, and records what the page showed.
async function look(page, result) {
  await page.goto(opts.pageURL, { timeout: 20000 });
  await page.waitForSelector('#login:not([hidden])', { timeout: timeoutMs });
  await page.fill('#token', opts.token);
  await page.click('#login button');
  await page.waitForSelector('#active tbody tr', { timeout: timeoutMs });
  await page.click('#active tbody tr');
  // The ladder with both legs' arrows, and a quality sample of the call.
  await page.waitForFunction(() => {
    const lines = [...document.querySelectorAll('#ladder line.arrow')];
    const touches = (x) => lines.filter((l) => l.x1.baseVal.value === x || l.x2.baseVal.value === x).length;
    const row = document.querySelector('#active tbody tr');
    return touches(170) >= 4 && touches(770) >= 4 && row && /MOS/.test(row.innerText);
  }, null, { timeout: timeoutMs, polling: 200 });
  await page.waitForFunction(() => document.querySelectorAll('.uplot canvas').length === 3, null, { timeout: timeoutMs });
  result.page = await page.evaluate(() => {
    const lines = [...document.querySelectorAll('#ladder line.arrow')];
    const touches = (x) => lines.filter((l) => l.x1.baseVal.value === x || l.x2.baseVal.value === x).length;
    return {
      ready: document.getElementById('ready').innerText,
      cards: [...document.querySelectorAll('.card')].map((c) => c.innerText.replace(/\n/g, ' ')),
      activeRows: [...document.querySelectorAll('#active tbody tr')].map((r) => r.innerText.replace(/\s+/g, ' ')),
      charts: document.querySelectorAll('.uplot canvas').length,
      webArrows: touches(170),
      coreArrows: touches(770),
      notes: [...document.querySelectorAll('#ladder text.note')].map((t) => t.textContent),
      labels: [...document.querySelectorAll('#ladder text[text-anchor="middle"]')].map((t) => t.textContent),
    };
  });
}

hardStop('statuspage.js', timeoutMs + 30000);

main().then(() => process.exit(0));
