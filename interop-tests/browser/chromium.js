// Shared by the Node drivers (run.js, netcheck.js): Debian's Chromium under
// playwright-core with the suite's flags and a fresh profile, one page whose
// console is recorded, and the one JSON result line the Go test reads.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const chromiumArgs = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  // Inside a network namespace with only lo, Chromium gathers no ICE
  // candidate at all unless loopback is allowed.
  '--allow-loopback-in-peer-connection',
  '--autoplay-policy=no-user-gesture-required',
];

function say(obj) { process.stdout.write(JSON.stringify(obj) + '\n'); }

// runInChromium opens a page in a fresh Chromium (opts.chromium,
// opts.chromiumArgs; launch, playwright's extra launch options), records
// its console into result.console, runs body(page), and prints result with
// ok set, or the error. The profile is removed afterwards.
async function runInChromium(opts, launch, result, body) {
  result.console = result.console || [];
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'imsgate-chromium-'));
  let context = null;
  try {
    context = await chromium.launchPersistentContext(userDataDir, Object.assign({
      executablePath: opts.chromium || '/usr/bin/chromium',
      headless: true,
      args: chromiumArgs.concat(opts.chromiumArgs || []),
    }, launch));
    const page = context.pages()[0] || await context.newPage();
    page.on('console', (m) => result.console.push(m.type() + ': ' + m.text()));
    page.on('pageerror', (e) => result.console.push('pageerror: ' + e.message));
    await body(page);
    result.ok = true;
  } catch (err) {
    result.error = String(err && err.stack || err);
  } finally {
    if (context) await context.close().catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  say(result);
}

// hardStop ends the process after ms with a failed result, so a wedged
// browser never outlives the Go test's timeout.
function hardStop(name, ms) {
  setTimeout(() => { say({ event: 'result', ok: false, error: name + ' hard timeout' }); process.exit(2); }, ms).unref();
}

module.exports = { runInChromium, hardStop, say };
