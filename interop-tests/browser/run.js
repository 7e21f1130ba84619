#!/usr/bin/env node
// Drives one interop scenario in headless Chromium (playwright-core) and
// prints JSON lines on stdout: progress events ({"event":"registered"},
// {"event":"incoming"}) that the Go test waits on, then one
// {"event":"result", ...}. Usage: node run.js '<json options>'
//
// Options: lib ("jssip" | "sipjs" | "webphone"), pageURL, wsURL, uri,
// password, target, referTo, noRegister, scenario, talkMs, stepTimeoutMs,
// artifactsDir; text and contentType for the message-* scenarios;
// refusedTarget for call-then-refused; chromiumArgs, more Chromium flags
// (a test's own certificate to trust); iceServers and iceTransportPolicy,
// the calls' RTCConfiguration (TURN servers, 'relay'); mediaVia
// ("10000:10002", JsSIP only), the port the page reaches the gateway's
// media at instead of the one its SDP names (an impairing relay's).
'use strict';

const fs = require('fs');
const path = require('path');
const { runInChromium, hardStop, say } = require('./chromium');

const opts = JSON.parse(process.argv[2] || '{}');
const stepTimeout = opts.stepTimeoutMs || 20000;
const talkMs = opts.talkMs || 4000;

const phases = {}; // getStats() counters at each step of a scenario
const sipFrames = []; // recordSIP's lines: result.sip
const wsErrors = []; // what Chromium said of a WebSocket that failed: result.wsErrors

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// sipFrames records the first line of every SIP message on the page's
// WebSockets, so a result shows "401 then 200" whatever the library does.
function recordSIP(page, sip) {
  page.on('websocket', (ws) => {
    // "SIP/2.0 200 OK (INFO)": a response names its CSeq method too.
    const first = (payload) => {
      const text = String(payload);
      const line = text.split('\r\n', 1)[0];
      const cseq = /^(?:CSeq|cseq):\s*\d+\s+(\S+)/m.exec(text);
      if (!line.startsWith('SIP/2.0') || !cseq) return line;
      // A provisional response also says whether it was reliable (RFC
      // 3262) and whether it carried SDP: "... (INVITE) [RSeq] [sdp]".
      let out = `${line} (${cseq[1]})`;
      if (/^SIP\/2\.0 1/.test(line)) {
        if (/^(?:Require|RSeq):/im.test(text)) out += ' [RSeq]';
        if (/^(?:Content-Type|c):\s*application\/sdp/im.test(text)) out += ' [sdp]';
      }
      return out;
    };
    ws.on('framesent', (f) => sip.push('> ' + first(f.payload)));
    ws.on('framereceived', (f) => sip.push('< ' + first(f.payload)));
    // A refused upgrade: the page's WebSocket only sees code 1006, Chromium
    // says more ("Unexpected response code: 401").
    ws.on('socketerror', (e) => wsErrors.push(String(e)));
  });
}

// currentStats reads the call's getStats() packet counters now.
function currentStats(page) { return page.evaluate(() => window.agent.stats()); }

// statsGrown waits until counter what (inbound, outbound) is n above from.
async function statsGrown(page, what, from, n) {
  const deadline = Date.now() + stepTimeout;
  for (;;) {
    const s = await currentStats(page);
    if (s[what] >= from[what] + n) return s;
    if (Date.now() > deadline) throw new Error(`${what} packets did not grow by ${n} from ${from[what]}`);
    await sleep(100);
  }
}

// agentStep waits for the page's count-th event name (default: the first).
async function agentStep(page, name, timeoutMs, count = 1) {
  const ok = await page.evaluate(([n, t, c]) => window.harness.waitFor(n, t, c), [name, timeoutMs, count]);
  if (!ok) throw new Error(`timed out after ${timeoutMs} ms waiting for ${name} #${count}`);
}

// sipSeen waits until n SIP frames starting with prefix ("< ACK") crossed
// the page's WebSockets.
async function sipSeen(prefix, n) {
  const deadline = Date.now() + stepTimeout;
  while (sipFrames.filter((l) => l.startsWith(prefix)).length < n) {
    if (Date.now() > deadline) throw new Error(`fewer than ${n} SIP frames "${prefix}"`);
    await sleep(50);
  }
}

const zero = { inbound: 0, outbound: 0 };

// callAndTalk: the browser calls opts.target and hears 50 packets; a page
// that registers calls once registered (the gateway relays no call before).
async function callAndTalk(page) {
  if (!opts.noRegister) await agentStep(page, 'registered', stepTimeout);
  await page.evaluate((t) => window.agent.call(t), opts.target);
  await agentStep(page, 'confirmed', stepTimeout);
  phases.before = await statsGrown(page, 'inbound', zero, 50);
}

// resumeAndHangUp: the browser resumes (opts.holdMethod), hears 50 packets
// and hangs up.
async function resumeAndHangUp(page) {
  await page.evaluate((m) => window.agent.unhold(m), opts.holdMethod);
  await agentStep(page, 'resumed', stepTimeout);
  phases.resumed = await currentStats(page);
  phases.after = await statsGrown(page, 'inbound', phases.resumed, 50);
  await page.evaluate(() => window.agent.hangup());
  await agentStep(page, 'ended', stepTimeout);
}

// registeredStep: the Go test starts the other peers once "registered" is
// printed.
async function registeredStep(page) {
  await agentStep(page, 'registered', stepTimeout);
  say({ event: 'registered' });
}

// sendMessage: opts.text to opts.target as opts.contentType (MESSAGE, RFC
// 3428), until its final 2xx.
async function sendMessage(page) {
  await page.evaluate((o) => window.agent.message(o.target, o.text, o.contentType), opts);
  await agentStep(page, 'message_sent', stepTimeout);
}

// answerIncoming: once registered (the Go test then starts its SIPp
// caller) the call comes in and the browser answers it.
async function answerIncoming(page) {
  await registeredStep(page);
  await agentStep(page, 'incoming', stepTimeout);
  say({ event: 'incoming' });
  await page.evaluate(() => window.agent.answer());
  await agentStep(page, 'confirmed', stepTimeout);
}

// pidf is a presence document (RFC 3863) for entity with one tuple whose
// basic status is status (open, closed).
function pidf(entity, status) {
  return '<?xml version="1.0" encoding="UTF-8"?>\r\n' +
    `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${entity}">\r\n` +
    `  <tuple id="imsgate-interop"><status><basic>${status}</basic></status></tuple>\r\n` +
    '</presence>\r\n';
}

// seenEvents counts the page's events called name so far.
function seenEvents(page, name) {
  return page.evaluate((n) => window.harness.snapshot().events.filter((e) => e.name === n).length, name);
}

// closedAfterOpen waits until a NOTIFY saying closed came after one saying
// open (the first NOTIFY, before any PUBLISH, may say closed too; the
// closed PUBLISH and the removal may both have come by the time open is
// seen).
async function closedAfterOpen(page) {
  const deadline = Date.now() + 2 * stepTimeout;
  for (;;) {
    const names = await page.evaluate(() => window.harness.snapshot().events.map((e) => e.name));
    const open = names.indexOf('presence_open');
    if (open >= 0 && names.indexOf('presence_closed', open) > open) return;
    if (Date.now() > deadline) throw new Error('no NOTIFY saying closed after one saying open');
    await sleep(100);
  }
}

// sipCount counts the SIP frames starting with prefix so far.
function sipCount(prefix) { return sipFrames.filter((l) => l.startsWith(prefix)).length; }

// watchPresence: once registered the browser subscribes to opts.target's
// presence (RFC 6665, Accept: application/pidf+xml) until the first NOTIFY
// ("subscribed", printed for the Go test).
// A NOTIFY refused 481 (JsSIP 3.12 refuses one that comes before the
// SUBSCRIBE's 2xx, RFC 6665 4.1.2.4 notwithstanding) fails it at once.
async function watchPresence(page) {
  await registeredStep(page);
  await page.evaluate((t) => window.agent.subscribe(t, 'presence', 'application/pidf+xml'), opts.target);
  const deadline = Date.now() + stepTimeout;
  while (!(await seenEvents(page, 'subscribed'))) {
    const i481 = sipFrames.findIndex((l) => l.startsWith('> SIP/2.0 481') && l.endsWith('(NOTIFY)'));
    if (i481 >= 0) {
      await sleep(300); // for the 200, if it is on its way
      const first = (prefix) => sipFrames.findIndex((l) => l.startsWith(prefix));
      throw new Error(`the page refused a NOTIFY (${sipFrames[i481]}); on the WebSocket the first NOTIFY is frame ` +
        `${first('< NOTIFY')}, the SUBSCRIBE's 200 frame ${first('< SIP/2.0 200 OK (SUBSCRIBE)')}`);
    }
    if (Date.now() > deadline) throw new Error('timed out waiting for subscribed');
    await sleep(50);
  }
  say({ event: 'subscribed' });
}

const scenarios = {
  async register(page) {
    await agentStep(page, 'registered', stepTimeout);
    await page.evaluate(() => window.agent.unregister());
    await agentStep(page, 'unregistered', stepTimeout);
  },
  // register-rejected: wrong credentials must end in a registration failure.
  async 'register-rejected'(page) {
    await agentStep(page, 'registration_failed', stepTimeout);
  },
  // call-out: the browser calls target, talks, and hangs up itself.
  async 'call-out'(page) {
    await agentStep(page, 'registered', stepTimeout);
    await page.evaluate((t) => window.agent.call(t), opts.target);
    await agentStep(page, 'confirmed', stepTimeout);
    await sleep(talkMs);
    await page.evaluate(() => window.agent.hangup());
    await agentStep(page, 'ended', stepTimeout);
  },
  // call-out-talk: the browser calls target; once 50 packets have come in
  // (phases.flowing) it talks talkMs (phases.talked) and hangs up.
  async 'call-out-talk'(page) {
    await agentStep(page, 'registered', stepTimeout);
    await page.evaluate((t) => window.agent.call(t), opts.target);
    await agentStep(page, 'confirmed', stepTimeout);
    phases.flowing = await statsGrown(page, 'inbound', zero, 50);
    await sleep(talkMs);
    phases.talked = await currentStats(page);
    await page.evaluate(() => window.agent.hangup());
    await agentStep(page, 'ended', stepTimeout);
  },
  // call-unregistered (with noRegister): the page calls before it has
  // registered and the call must fail ("refused" is printed); it then
  // registers, calls again, talks and hangs up.
  async 'call-unregistered'(page) {
    await agentStep(page, 'connected', stepTimeout);
    await page.evaluate((t) => window.agent.call(t), opts.target);
    await agentStep(page, 'failed', stepTimeout);
    say({ event: 'refused' });
    await page.evaluate(() => window.agent.register());
    await agentStep(page, 'registered', stepTimeout);
    await page.evaluate((t) => window.agent.call(t), opts.target);
    await agentStep(page, 'confirmed', stepTimeout);
    await sleep(talkMs);
    await page.evaluate(() => window.agent.hangup());
    await agentStep(page, 'ended', stepTimeout);
  },
  // call-out-dtmf: as call-out, pressing 1 and # as INFO and then 2 and 5
  // as RFC 4733 (RTCDTMFSender) mid-call.
  async 'call-out-dtmf'(page) {
    await agentStep(page, 'registered', stepTimeout);
    await page.evaluate((t) => window.agent.call(t), opts.target);
    await agentStep(page, 'confirmed', stepTimeout);
    await sleep(1000);
    for (const tone of ['1', '#']) {
      await page.evaluate((d) => window.agent.dtmf(d), tone);
      await sleep(500);
    }
    for (const tone of ['2', '5']) {
      await page.evaluate((d) => window.agent.dtmfRTP(d), tone);
      await sleep(500);
    }
    await sleep(1000);
    await page.evaluate(() => window.agent.hangup());
    await agentStep(page, 'ended', stepTimeout);
  },
  // call-out-rejected: the call must fail (the Go test checks the status).
  async 'call-out-rejected'(page) {
    await agentStep(page, 'registered', stepTimeout);
    await page.evaluate((t) => window.agent.call(t), opts.target);
    await agentStep(page, 'failed', stepTimeout);
  },
  // cancel-out: the browser calls a target that only rings, then cancels.
  async 'cancel-out'(page) {
    await agentStep(page, 'registered', stepTimeout);
    await page.evaluate((t) => window.agent.call(t), opts.target);
    await agentStep(page, 'progress', stepTimeout);
    await page.evaluate(() => window.agent.hangup());
    await agentStep(page, 'failed', stepTimeout);
  },
  // call-in: the Go test starts a SIPp caller once "registered" is printed;
  // the browser answers and the caller hangs up.
  async 'call-in'(page) {
    await answerIncoming(page);
    await agentStep(page, 'ended', talkMs + stepTimeout);
  },
  // call-in-local-bye: as call-in, but the browser hangs up.
  async 'call-in-local-bye'(page) {
    await answerIncoming(page);
    await sleep(talkMs);
    await page.evaluate(() => window.agent.hangup());
    await agentStep(page, 'ended', stepTimeout);
  },
  // call-then-refused (with noRegister): a page that never registers
  // (a click-to-call token) calls target, talks and hangs up, then calls
  // opts.refusedTarget, which must fail.
  async 'call-then-refused'(page) {
    await agentStep(page, 'connected', stepTimeout);
    await page.evaluate((t) => window.agent.call(t), opts.target);
    await agentStep(page, 'confirmed', stepTimeout);
    await sleep(talkMs);
    await page.evaluate(() => window.agent.hangup());
    await agentStep(page, 'ended', stepTimeout);
    await page.evaluate((t) => window.agent.call(t), opts.refusedTarget);
    await agentStep(page, 'failed', stepTimeout);
  },
  // connect-refused (with noRegister): the WebSocket never opens; the
  // library reports its first failed connection as disconnected.
  async 'connect-refused'(page) {
    await agentStep(page, 'disconnected', stepTimeout);
    if (await seenEvents(page, 'connected')) throw new Error('the WebSocket connected');
  },
  // registered-until-closed: once registered ("registered" printed) the
  // page stays until the gateway closes its WebSocket (disconnected: the
  // close code and reason).
  async 'registered-until-closed'(page) {
    await registeredStep(page);
    await agentStep(page, 'disconnected', stepTimeout);
  },
  // call-until-closed: once registered the page calls target and stays in
  // the call until the far end ends it (ended) and the gateway closes the
  // WebSocket (disconnected).
  async 'call-until-closed'(page) {
    await agentStep(page, 'registered', stepTimeout);
    await page.evaluate((t) => window.agent.call(t), opts.target);
    await agentStep(page, 'confirmed', stepTimeout);
    say({ event: 'confirmed' });
    await agentStep(page, 'ended', stepTimeout);
    await agentStep(page, 'disconnected', stepTimeout);
  },
  // call-out-hold: the browser calls target, holds (opts.holdMethod:
  // "reinvite" or "update"), resumes and hangs up; getStats() counters are
  // read at each step into result.phases.
  async 'call-out-hold'(page) {
    await agentStep(page, 'registered', stepTimeout);
    await callAndTalk(page);
    await page.evaluate((m) => window.agent.hold(m), opts.holdMethod);
    await agentStep(page, 'held', stepTimeout);
    phases.held = await currentStats(page);
    // On hold: a second of sending (sendonly) over which nothing comes in.
    phases.holdEnd = await statsGrown(page, 'outbound', phases.held, 50);
    await resumeAndHangUp(page);
  },
  // call-out-early: the browser calls target, which answers 183 with early
  // media for a while (JsSIP sends no INFO in an early dialog to end it);
  // getStats() must show 50 packets in before the 2xx.
  async 'call-out-early'(page) {
    await agentStep(page, 'registered', stepTimeout);
    await page.evaluate((t) => window.agent.call(t), opts.target);
    await agentStep(page, 'progress', stepTimeout);
    phases.early = await statsGrown(page, 'inbound', zero, 50);
    if (await page.evaluate(() => window.harness.snapshot().events.some((e) => e.name === 'accepted'))) {
      throw new Error('the 2xx came before the early media was heard');
    }
    await agentStep(page, 'confirmed', stepTimeout);
    phases.confirmed = await currentStats(page);
    phases.after = await statsGrown(page, 'inbound', phases.confirmed, 50);
    await page.evaluate(() => window.agent.hangup());
    await agentStep(page, 'ended', stepTimeout);
  },
  // call-in-reconnect: a call from SIPp (uac_reconnect.xml); once it talks
  // the Go test kills the WebSocket's TCP connection. The library
  // reconnects and registers again by itself; then the browser's INFO, the
  // far end's INFO and two re-INVITEs (hold, resume), and its hang-up.
  async 'call-in-reconnect'(page) {
    await answerIncoming(page);
    phases.before = await statsGrown(page, 'inbound', zero, 50);
    say({ event: 'talking' });
    await agentStep(page, 'disconnected', stepTimeout);
    phases.dropped = await currentStats(page);
    await agentStep(page, 'registered', stepTimeout, 2);
    phases.back = await currentStats(page);
    say({ event: 'back' });
    await page.evaluate(() => window.agent.info('application/x-imsgate-test', 'back\r\n'));
    await agentStep(page, 'info_sent', stepTimeout);
    await agentStep(page, 'info_in', stepTimeout);
    await agentStep(page, 'reinvite', stepTimeout, 2);
    await sipSeen('< ACK', 3); // the INVITE's and both re-INVITEs'
    phases.resumed = await currentStats(page);
    phases.after = await statsGrown(page, 'outbound', phases.resumed, 50);
    await page.evaluate(() => window.agent.hangup());
    await agentStep(page, 'ended', stepTimeout);
  },
  // call-out-refer: a blind transfer by the browser (opts.referTo); the
  // far end's 202 and NOTIFYs come back as refer_* events.
  async 'call-out-refer'(page) {
    await callAndTalk(page);
    await page.evaluate((t) => window.agent.refer(t), opts.referTo);
    await agentStep(page, 'refer_requestSucceeded', stepTimeout);
    await agentStep(page, 'refer_accepted', stepTimeout);
    await page.evaluate(() => window.agent.hangup());
    await agentStep(page, 'ended', stepTimeout);
  },
  // call-out-referred: the far end REFERs the browser, which accepts and
  // calls the Refer-To; the far end hangs up the first call; the browser
  // talks on the second (its getStats() from zero) and hangs it up.
  async 'call-out-referred'(page) {
    await callAndTalk(page);
    await agentStep(page, 'refer', stepTimeout);
    await page.evaluate(() => window.agent.acceptRefer());
    await agentStep(page, 'confirmed', stepTimeout, 2);
    await agentStep(page, 'ended', stepTimeout); // the first call, by the far end's BYE
    phases.transferred = await statsGrown(page, 'inbound', zero, 50);
    await page.evaluate(() => window.agent.hangup());
    await agentStep(page, 'ended', stepTimeout, 2);
  },
  // cancel-in: the SIPp caller cancels while the browser rings.
  async 'cancel-in'(page) {
    await registeredStep(page);
    await agentStep(page, 'incoming', stepTimeout);
    say({ event: 'incoming' });
    await agentStep(page, 'failed', stepTimeout);
  },
  // message-send: the browser sends a message.
  async 'message-send'(page) {
    await registeredStep(page);
    await sendMessage(page);
  },
  // message-chat: the browser sends a message, then one comes back.
  async 'message-chat'(page) {
    await registeredStep(page);
    await sendMessage(page);
    await agentStep(page, 'message_in', stepTimeout);
  },
  // message-receive: a message comes in (message_in: from, type, body).
  async 'message-receive'(page) {
    await registeredStep(page);
    await agentStep(page, 'message_in', stepTimeout);
  },
  // presence-watch: the browser subscribes to opts.target's presence (the
  // Go test starts the publisher once it is "subscribed"), waits for a
  // NOTIFY saying open, then a later one saying closed (the presence
  // events' details), then unsubscribes (Expires: 0) until its 200 and the
  // final NOTIFY.
  async 'presence-watch'(page) {
    await watchPresence(page);
    await closedAfterOpen(page);
    const answered = sipCount('< SIP/2.0 200 OK (SUBSCRIBE)');
    const notified = sipCount('< NOTIFY');
    await page.evaluate(() => window.agent.unsubscribe());
    await sipSeen('< SIP/2.0 200 OK (SUBSCRIBE)', answered + 1);
    await sipSeen('< NOTIFY', notified + 1);
  },
  // presence-watch-hold: the browser subscribes to opts.target's presence
  // and, once "subscribed", stays until the Go test kills its WebSocket.
  async 'presence-watch-hold'(page) {
    await watchPresence(page);
    await agentStep(page, 'disconnected', stepTimeout);
  },
  // presence-publish: once registered the browser publishes its own
  // presence (PUBLISH to opts.target, RFC 3903): open, then closed, each
  // after the previous one's final response (publish_done: its status),
  // then removes it (unpublish_done: its status).
  async 'presence-publish'(page) {
    await registeredStep(page);
    for (const status of ['open', 'closed']) {
      const done = await seenEvents(page, 'publish_done');
      await page.evaluate(([t, b]) => window.agent.publish(t, 'presence', b, 'application/pidf+xml'), [opts.target, pidf(opts.uri, status)]);
      await agentStep(page, 'publish_done', stepTimeout, done + 1);
    }
    await page.evaluate(() => window.agent.unpublish());
    await agentStep(page, 'unpublish_done', stepTimeout);
  },
  // mwi-receive: once registered a NOTIFY outside any subscription comes in
  // (message-summary, RFC 3842): mwi, its Messages-Waiting line.
  async 'mwi-receive'(page) {
    await page.evaluate(() => window.agent.watchNotify());
    await registeredStep(page);
    await agentStep(page, 'mwi', stepTimeout);
  },
  // message-answer: a message comes in and the browser answers with one.
  async 'message-answer'(page) {
    await registeredStep(page);
    await agentStep(page, 'message_in', stepTimeout);
    await sendMessage(page);
  },
};

// The demo web phone page: driven through its buttons, as a person would.
async function webphone(page, result) {
  await page.waitForFunction(() => typeof window.webphone === 'object', null, { timeout: stepTimeout });
  const waitStatus = (text) => page.waitForFunction(
    (t) => document.getElementById('status').textContent.startsWith(t), text, { timeout: stepTimeout });
  await page.click('#register');
  await waitStatus('registered');
  result.events.push({ name: 'registered' });
  await page.fill('#target', opts.target);
  await page.click('#call');
  await waitStatus('in call');
  result.events.push({ name: 'confirmed' });
  // The test pages' getStats sampler (common.js), added to the phone's page.
  await page.addScriptTag({ path: path.join(__dirname, 'common.js') });
  await page.evaluate(() => window.harness.startStats(window.webphone.session.connection));
  await sleep(talkMs);
  await page.click('[data-key="1"]');
  await sleep(300);
  if (opts.artifactsDir) {
    fs.mkdirSync(opts.artifactsDir, { recursive: true });
    const shot = path.join(opts.artifactsDir, 'webphone-in-call.png');
    await page.screenshot({ path: shot, fullPage: true });
    result.screenshot = shot;
  }
  result.stats = await page.evaluate(async () => {
    await window.harness.sample(window.webphone.session.connection);
    window.harness.stopStats();
    return window.harness.snapshot().stats;
  });
  await page.click('#hangup');
  await waitStatus('call ended');
  result.events.push({ name: 'ended' });
  result.status = await page.textContent('#status');
  result.log = await page.$$eval('#log li', (lis) => lis.map((li) => li.textContent));
}

async function main() {
  const result = { event: 'result', lib: opts.lib, scenario: opts.scenario, ok: false, sip: [], console: [], events: [], wsErrors };
  await runInChromium(opts, {}, result, async (page) => {
    result.sip = sipFrames;
    recordSIP(page, sipFrames);
    await page.goto(opts.pageURL, { timeout: stepTimeout });
    if (opts.lib === 'webphone') {
      await webphone(page, result);
      return;
    }
    const run = scenarios[opts.scenario];
    if (!run) throw new Error(`unknown scenario ${opts.scenario}`);
    await page.waitForFunction(() => window.agent && window.harness, null, { timeout: stepTimeout });
    result.library = await page.evaluate(() => window.agent.library);
    // noRegister: calls straight to a SIPp core, which takes no REGISTER.
    await page.evaluate((o) => { window.agent.start(o); if (!o.noRegister) window.agent.register(); },
      { wsURL: opts.wsURL, uri: opts.uri, password: opts.password, noRegister: !!opts.noRegister,
        iceServers: opts.iceServers || [], iceTransportPolicy: opts.iceTransportPolicy || '', mediaVia: opts.mediaVia || '' });
    try {
      await run(page);
    } finally {
      const snap = await page.evaluate(() => window.harness.snapshot());
      result.events = snap.events;
      result.phases = phases;
      result.stats = snap.stats;
      await page.evaluate(() => window.agent.stop()).catch(() => {});
    }
  });
}

hardStop('run.js', opts.hardTimeoutMs || 120000);

main().then(() => process.exit(0));
