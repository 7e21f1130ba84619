// The /netcheck page: one probe per network path from this browser to the
// gateway, results in plain words. A probe is an RTCPeerConnection whose
// offer goes to POST probe?path=udp|tcp|any; the gateway answers with only
// the candidates of that path, and the page waits for ICE and DTLS
// ('connected'), reads the selected candidate pair from getStats() and
// DELETEs the probe. window.netcheck holds the results for tests.
'use strict';

(function () {
  const probeTimeoutMs = 6000; // ICE + DTLS on a path that works take well under a second
  const gatherTimeoutMs = 8000; // a TURN server that does not answer
  const params = new URLSearchParams(location.search);
  const token = params.get('token') || '';

  const rows = [
    { id: 'stun', name: 'STUN' },
    { id: 'udp', name: 'UDP straight to the gateway' },
    { id: 'tcp', name: 'ICE-TCP to the gateway' },
    { id: 'turn-udp', name: 'TURN over UDP' },
    { id: 'turn-tcp', name: 'TURN over TCP' },
    { id: 'turn-tls', name: 'TURN over TLS' },
  ];
  const pathNames = {
    udp: 'UDP straight to the gateway',
    tcp: 'ICE-TCP to the gateway',
    'turn-udp': 'TURN over UDP',
    'turn-tcp': 'TURN over TCP',
    'turn-tls': 'TURN over TLS',
  };
  const marks = { works: '✓', failed: '✗', 'not tried': '–', checking: '…' };

  const state = { done: false, results: [], callPath: '', callPathText: '' };
  window.netcheck = state;

  const list = document.getElementById('results');
  const summary = document.getElementById('summary');
  const again = document.getElementById('again');

  function render() {
    list.replaceChildren(...state.results.map((r) => {
      const li = document.createElement('li');
      li.className = r.status === 'not tried' ? 'skipped' : r.status;
      const mark = document.createElement('span');
      mark.className = 'mark';
      mark.textContent = marks[r.status] || '?';
      const line = document.createElement('span');
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = r.name + ': ';
      const text = document.createElement('span');
      text.className = 'text';
      text.textContent = r.text;
      line.append(name, text);
      li.append(mark, line);
      if (r.detail) {
        const d = document.createElement('span');
        d.className = 'detail';
        d.textContent = r.detail;
        li.append(d);
      }
      return li;
    }));
  }

  function set(id, status, text, extra) {
    const r = state.results.find((x) => x.id === id);
    Object.assign(r, { status, text, detail: '' }, extra || {});
    render();
  }

  const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

  // gathered resolves when ICE gathering is complete (or after the timeout).
  function gathered(pc) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, gatherTimeoutMs);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); }
      });
    });
  }

  // connected: true once ICE and DTLS are up, false if they fail or time out.
  function connected(pc) {
    return new Promise((resolve) => {
      const check = () => {
        if (pc.connectionState === 'connected') { clearTimeout(t); resolve(true); }
        if (pc.connectionState === 'failed' || pc.connectionState === 'closed') { clearTimeout(t); resolve(false); }
      };
      const t = setTimeout(() => resolve(false), probeTimeoutMs);
      pc.addEventListener('connectionstatechange', check);
      check();
    });
  }

  function candidateOf(s) {
    return s && {
      candidateType: s.candidateType, protocol: s.protocol, relayProtocol: s.relayProtocol || '',
      address: s.address || s.ip || '', port: s.port,
    };
  }

  // selectedPair reads the transport's selected candidate pair.
  async function selectedPair(pc) {
    for (let i = 0; i < 5; i++) {
      const stats = await pc.getStats();
      let pair = null;
      stats.forEach((s) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
      });
      if (!pair) stats.forEach((s) => { if (!pair && s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
      if (pair) {
        let rtt = pair.currentRoundTripTime;
        if (rtt === undefined && pair.responsesReceived) rtt = pair.totalRoundTripTime / pair.responsesReceived;
        if (rtt !== undefined || i === 4) {
          return {
            local: candidateOf(stats.get(pair.localCandidateId)),
            remote: candidateOf(stats.get(pair.remoteCandidateId)),
            rttMs: rtt === undefined ? null : rtt * 1000,
          };
        }
      }
      await sleep(200);
    }
    return null;
  }

  // pathOf names the path of a selected pair: udp, tcp, turn-udp, turn-tcp, turn-tls.
  function pathOf(pair) {
    if (pair.local.candidateType === 'relay') return 'turn-' + (pair.local.relayProtocol || 'udp');
    return pair.remote.protocol === 'tcp' ? 'tcp' : 'udp';
  }

  // gatewayCandidates lists the answer's candidates: "127.0.0.1:10000 (udp)".
  function gatewayCandidates(sdp) {
    const out = [];
    for (const line of sdp.split(/\r?\n/)) {
      const f = line.split(' ');
      if (line.startsWith('a=candidate:') && f.length >= 6) out.push(`${f[4]}:${f[5]} (${f[2].toLowerCase()})`);
    }
    return out.join(', ') || 'its address';
  }

  function ms(x) {
    if (x === null || x === undefined) return '';
    return x < 1 ? '<1 ms' : Math.round(x) + ' ms';
  }

  function describePair(pair) {
    const l = pair.local;
    const r = pair.remote;
    const from = l.candidateType === 'relay'
      ? `relayed at ${l.address}:${l.port} (TURN over ${l.relayProtocol})`
      : `from ${l.address}:${l.port} (${l.candidateType}, ${l.protocol})`;
    return `${from} to the gateway at ${r.address}:${r.port} (${r.protocol})`;
  }

  // probe runs one RTCPeerConnection against POST probe?path=; it returns
  // {status, text, pair}. settleMs waits before reading the selected pair:
  // with several paths open the browser may move to a better one after the
  // first that worked, as in a call.
  async function probe(path, rtcConfig, settleMs) {
    const pc = new RTCPeerConnection(rtcConfig);
    const errors = [];
    pc.addEventListener('icecandidateerror', (e) => {
      errors.push(`${e.url || ''} ${e.errorCode}${e.errorText ? ' ' + e.errorText : ''}`.trim());
    });
    let where = '';
    try {
      pc.addTransceiver('audio', { direction: 'sendrecv' });
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      const offer = pc.localDescription.sdp;
      const relay = rtcConfig.iceTransportPolicy === 'relay';
      if (relay && !/ typ relay /.test(offer)) {
        return { status: 'failed', text: 'failed: the TURN server gave no relay address' + (errors.length ? ` (${errors[0]})` : '') };
      }
      const res = await fetch('probe?path=' + path, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: offer });
      const body = await res.text();
      if (res.status === 501) return { status: 'not tried', text: `not tried (${body.trim()})` };
      if (!res.ok) return { status: 'failed', text: `failed: the gateway answered ${res.status} ${body.trim()}` };
      where = res.headers.get('Location') || '';
      const t0 = performance.now();
      await pc.setRemoteDescription({ type: 'answer', sdp: body });
      const ok = await connected(pc);
      const setupMs = performance.now() - t0;
      if (!ok) {
        const detail = relay
          ? 'the relay got no answer from the gateway'
          : `nothing came back from the gateway at ${gatewayCandidates(body)}: something on the way blocks this path`;
        return { status: 'failed', text: `failed: no connection within ${probeTimeoutMs / 1000} s`, detail };
      }
      if (settleMs) await sleep(settleMs);
      const pair = await selectedPair(pc);
      if (!pair) return { status: 'works', text: 'works', setupMs };
      return { status: 'works', text: `works (${ms(pair.rttMs !== null ? pair.rttMs : setupMs)})`, pair, rttMs: pair.rttMs, setupMs, detail: describePair(pair) };
    } catch (err) {
      return { status: 'failed', text: 'failed: ' + (err && err.message || err) };
    } finally {
      pc.close();
      if (where) await fetch(where, { method: 'DELETE' }).catch(() => {});
    }
  }

  // iceServers asks the gateway for its STUN and TURN servers, with the
  // page's token as Bearer: TURN credentials come only with one.
  async function iceServers() {
    try {
      const res = await fetch('../ice-servers', { headers: token ? { Authorization: 'Bearer ' + token } : {}, cache: 'no-store' });
      if (!res.ok) {
        return { servers: [], problem: `/ice-servers answered ${res.status}` + (token ? ' to the token' : ': open this page with ?token=… in token mode') };
      }
      const body = await res.json();
      return { servers: body.iceServers || [], problem: '' };
    } catch (err) {
      return { servers: [], problem: '/ice-servers: ' + (err && err.message || err) };
    }
  }

  // turnKind sorts a TURN URL into turn-udp, turn-tcp or turn-tls.
  function turnKind(u) {
    if (u.startsWith('turns:')) return 'turn-tls';
    return /[?&]transport=tcp/i.test(u) ? 'turn-tcp' : 'turn-udp';
  }

  // stunCheck gathers with the STUN servers only and reads the
  // server-reflexive candidate: the address the STUN server saw.
  async function stunCheck(urls) {
    const pc = new RTCPeerConnection({ iceServers: [{ urls }] });
    const errors = [];
    const srflx = [];
    const hosts = []; // UDP host candidates with a real address: {address, port}
    pc.addEventListener('icecandidateerror', (e) => errors.push(`${e.url || ''} ${e.errorCode}${e.errorText ? ' ' + e.errorText : ''}`.trim()));
    pc.addEventListener('icecandidate', (e) => {
      const c = e.candidate;
      if (!c || !c.candidate) return;
      if (c.type === 'srflx') srflx.push(c);
      if (c.type === 'host' && c.protocol === 'udp' && c.address && !c.address.endsWith('.local')) hosts.push(c);
    });
    try {
      pc.addTransceiver('audio');
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
    } finally {
      pc.close();
    }
    if (srflx.length > 0) {
      const c = srflx[0];
      const local = c.relatedAddress && c.relatedAddress !== '0.0.0.0' && c.relatedAddress !== '::' ? c.relatedAddress : '';
      let nat = 'NAT unknown';
      let detail = 'this browser hides its own address, so whether a NAT is in between cannot be told';
      if (local === c.address) {
        nat = 'no NAT';
        detail = 'that is your own address';
      } else if (local) {
        nat = 'behind NAT';
        detail = `your own address is ${local}:${c.relatedPort}`;
      }
      return { status: 'works', text: `your public address is ${c.address}:${c.port} (${nat})`, detail, publicAddress: `${c.address}:${c.port}` };
    }
    if (errors.length > 0) return { status: 'failed', text: 'failed: no answer from the STUN server', detail: errors.join('; ') };
    if (hosts.length > 0) {
      // No error, and no reflexive address: the browser dropped it as the
      // same as its own (Chrome does), so the server saw this one.
      const h = hosts[0];
      const text = hosts.length === 1 ? `your public address is ${h.address}:${h.port} (no NAT)` : `your public address is your own (no NAT)`;
      return { status: 'works', text, detail: 'the STUN server saw this browser\'s own address', publicAddress: `${h.address}:${h.port}` };
    }
    return { status: 'failed', text: 'failed: no reflexive address came back' };
  }

  async function run() {
    again.disabled = true;
    state.done = false;
    state.callPath = '';
    state.callPathText = '';
    state.results = rows.map((r) => ({ id: r.id, name: r.name, status: 'checking', text: 'checking…', detail: '' }));
    summary.className = '';
    summary.textContent = 'Checking…';
    render();

    const { servers, problem } = await iceServers();
    const stunURLs = [];
    const turns = {};
    for (const s of servers) {
      const urls = Array.isArray(s.urls) ? s.urls : [s.urls];
      for (const u of urls) {
        if (/^stuns?:/.test(u)) stunURLs.push(u);
        else if (/^turns?:/.test(u) && s.username && !turns[turnKind(u)]) turns[turnKind(u)] = { urls: [u], username: s.username, credential: s.credential };
      }
    }

    if (stunURLs.length === 0) {
      set('stun', 'not tried', problem ? `not tried (${problem})` : 'not tried (the gateway names no STUN server: stun.listen)');
    } else {
      const r = await stunCheck(stunURLs);
      set('stun', r.status, r.text, { detail: r.detail || '', publicAddress: r.publicAddress || '' });
    }

    for (const path of ['udp', 'tcp']) {
      const r = await probe(path, { iceServers: [] });
      set(path, r.status, r.text, { detail: r.detail || '', rttMs: r.rttMs, pair: r.pair || null });
    }

    for (const kind of ['turn-udp', 'turn-tcp', 'turn-tls']) {
      const server = turns[kind];
      if (!server) {
        let why = 'the gateway gave no TURN credentials: open this page with ?token=… in token mode';
        if (problem) why = problem;
        else if (Object.keys(turns).length > 0) why = 'the gateway offers no TURN server of this kind';
        set(kind, 'not tried', `not tried (${why})`);
        continue;
      }
      const r = await probe('any', { iceServers: [server], iceTransportPolicy: 'relay' });
      if (r.status === 'works' && r.pair && pathOf(r.pair) !== kind) {
        r.status = 'failed';
        r.text = `failed: relayed over ${r.pair.local.relayProtocol}, not as asked`;
      }
      set(kind, r.status, r.text, { detail: r.detail || server.urls[0], rttMs: r.rttMs, pair: r.pair || null });
    }

    // As a call: every candidate, every server.
    const call = await probe('any', { iceServers: servers.filter((s) => !/^turns?:/.test([].concat(s.urls)[0]) || s.username) }, 1000);
    if (call.status === 'works' && call.pair) {
      state.callPath = pathOf(call.pair);
      state.callPathText = pathNames[state.callPath];
      summary.className = 'works';
      summary.textContent = `A call from here would use: ${state.callPathText}.`;
    } else if (call.status === 'works') {
      state.callPath = 'unknown';
      state.callPathText = 'a path this browser does not name';
      summary.className = 'works';
      summary.textContent = 'A call from here would connect (this browser does not say over which path).';
    } else {
      state.callPath = 'none';
      state.callPathText = 'none';
      summary.className = 'failed';
      summary.textContent = `A call from here would have no audio: no path works (${call.text}).`;
    }
    state.call = call;
    state.done = true;
    again.disabled = false;
  }

  again.addEventListener('click', run);
  run();
})();
