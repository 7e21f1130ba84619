// Shared by the JsSIP and SIP.js test pages: an event record that the Node
// driver waits on, remote audio playback, and a getStats sampler that keeps
// the largest counters seen while a call is up (stats vanish when it ends).
'use strict';

window.harness = (function () {
  const events = [];   // {name, at, detail}
  const waiters = [];  // {name, count, resolve}
  // pair is the call's selected ICE candidate pair, as last seen.
  // quality is the call's RTP figures as last sampled (not the largest):
  // what the browser measured of the stream it receives (inbound), what it
  // sends (outbound), and what the far end's RTCP said of the latter
  // (remoteInbound: the gateway's receiver reports).
  const best = { inbound: { packetsReceived: 0, audioLevel: 0, totalAudioEnergy: 0 }, outbound: { packetsSent: 0 }, pair: null, quality: null };
  let sampler = null;

  const seen = (name) => events.filter((e) => e.name === name).length;

  function emit(name, detail) {
    events.push({ name, at: Date.now(), detail: detail === undefined ? null : String(detail) });
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i].name === name && seen(name) >= waiters[i].count) {
        waiters[i].resolve(true);
        waiters.splice(i, 1);
      }
    }
  }

  // waitFor resolves true once the named event has happened count times
  // (default once), false on timeout.
  function waitFor(name, timeoutMs, count = 1) {
    if (seen(name) >= count) return Promise.resolve(true);
    return new Promise((resolve) => {
      const w = { name, count, resolve };
      waiters.push(w);
      setTimeout(() => {
        const i = waiters.indexOf(w);
        if (i >= 0) waiters.splice(i, 1);
        resolve(false);
      }, timeoutMs);
    });
  }

  function playRemoteAudio(pc) {
    const audio = document.getElementById('remote-audio');
    const attach = (track, streams) => {
      audio.srcObject = (streams && streams[0]) || new MediaStream([track]);
      audio.play().catch(() => {});
      emit('remote_track');
    };
    pc.addEventListener('track', (e) => attach(e.track, e.streams));
    for (const r of pc.getReceivers()) {
      if (r.track && r.track.kind === 'audio') attach(r.track, null);
    }
  }

  // selectedPair is the candidate pair ICE uses: the transport's
  // selectedCandidatePairId, else the nominated succeeded pair; with its
  // local and remote candidates (candidateType host/srflx/prflx/relay,
  // protocol udp/tcp; relayProtocol udp/tcp/tls, the browser's leg to its
  // TURN server). null before ICE has chosen.
  function selectedPair(report) {
    let pair = null;
    report.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId) || pair;
    });
    if (!pair) {
      report.forEach((s) => {
        if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
      });
    }
    if (!pair) return null;
    const cand = (id) => {
      const c = report.get(id) || {};
      const out = { candidateType: c.candidateType || '', protocol: c.protocol || '', address: c.address || c.ip || '', port: c.port || 0 };
      if (c.relayProtocol) out.relayProtocol = c.relayProtocol;
      if (c.tcpType) out.tcpType = c.tcpType;
      if (c.url) out.url = c.url;
      return out;
    };
    return {
      state: pair.state, nominated: !!pair.nominated,
      packetsSent: pair.packetsSent || 0, packetsReceived: pair.packetsReceived || 0,
      local: cand(pair.localCandidateId), remote: cand(pair.remoteCandidateId),
    };
  }

  async function sample(pc) {
    const report = await pc.getStats();
    best.pair = selectedPair(report) || best.pair;
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        best.inbound.packetsReceived = Math.max(best.inbound.packetsReceived, s.packetsReceived || 0);
        best.inbound.audioLevel = Math.max(best.inbound.audioLevel, s.audioLevel || 0);
        best.inbound.totalAudioEnergy = Math.max(best.inbound.totalAudioEnergy, s.totalAudioEnergy || 0);
      }
      if (s.type === 'outbound-rtp' && s.kind === 'audio') {
        best.outbound.packetsSent = Math.max(best.outbound.packetsSent, s.packetsSent || 0);
      }
    });
    best.quality = quality(report) || best.quality;
  }

  // quality reads the audio streams' loss, jitter (seconds) and round trip
  // (seconds) from a getStats() report; null while there is no inbound one.
  function quality(report) {
    let q = null;
    const rest = {};
    report.forEach((s) => {
      if (s.kind !== 'audio') return;
      if (s.type === 'inbound-rtp') {
        q = { inbound: { packetsReceived: s.packetsReceived || 0, packetsLost: s.packetsLost || 0, jitter: s.jitter || 0 } };
      } else if (s.type === 'outbound-rtp') {
        rest.outbound = { packetsSent: s.packetsSent || 0 };
      } else if (s.type === 'remote-inbound-rtp') {
        rest.remoteInbound = { packetsLost: s.packetsLost || 0, fractionLost: s.fractionLost || 0, jitter: s.jitter || 0,
          roundTripTime: s.roundTripTime || 0, measurements: s.roundTripTimeMeasurements || 0 };
      }
    });
    return q && Object.assign(q, rest);
  }

  // current reads the counters now (not the largest seen).
  async function current(pc) {
    const out = { inbound: 0, outbound: 0 };
    if (!pc) return out;
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') out.inbound = s.packetsReceived || 0;
      if (s.type === 'outbound-rtp' && s.kind === 'audio') out.outbound = s.packetsSent || 0;
    });
    return out;
  }

  function startStats(pc) {
    stopStats();
    sampler = setInterval(() => sample(pc).catch(() => {}), 250);
  }

  function stopStats() {
    if (sampler !== null) clearInterval(sampler);
    sampler = null;
  }

  // direction is an SDP's first a=sendrecv/sendonly/recvonly/inactive.
  function direction(sdp) {
    const m = /a=(sendrecv|sendonly|recvonly|inactive)/.exec(sdp || '');
    return m ? m[1] : 'sendrecv';
  }

  // message is a message_in event's detail: what the Go test checks.
  function message(from, contentType, body) {
    return JSON.stringify({ from, contentType, body });
  }

  // basic is a PIDF body's first <basic> status (RFC 3863): open, closed,
  // or '' when there is none.
  function basic(body) {
    const m = /<(?:\w+:)?basic>\s*([^<\s]+)\s*<\/(?:\w+:)?basic>/.exec(body || '');
    return m ? m[1] : '';
  }

  // notify reports a NOTIFY the page took (RFC 6665): notify_in with its
  // event, Subscription-State, type, body, PIDF status and the body's
  // Messages-Waiting line (RFC 3842); a PIDF status also as presence
  // (detail open or closed) and presence_<status>; a message summary as mwi
  // (detail: its Messages-Waiting line).
  function notify(event, state, contentType, body) {
    const waiting = /^Messages-Waiting:[^\r\n]*/mi.exec(body || '');
    const status = basic(body);
    emit('notify_in', JSON.stringify({ event, state, contentType, body: body || '', basic: status, waiting: waiting ? waiting[0] : '' }));
    if (status) {
      emit('presence', status);
      emit('presence_' + status);
    }
    if (waiting) emit('mwi', waiting[0]);
  }

  function snapshot() {
    return { events: events.map((e) => ({ ...e })), stats: JSON.parse(JSON.stringify(best)) };
  }

  return { emit, waitFor, playRemoteAudio, startStats, stopStats, sample, snapshot, current, direction, message, basic, notify };
})();
