// imsgate demo web phone: JsSIP over WebSocket to the gateway, WebRTC audio.
// Fields may be preset by query parameters (?ws=&uri=&password=&token=&target=)
// so a link or a test can open the page ready to use; ?relay=1 sends media
// through TURN only (iceTransportPolicy 'relay').
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const ui = {
    wsURL: $('ws-url'), uri: $('uri'), password: $('password'), token: $('token'), target: $('target'),
    register: $('register'), unregister: $('unregister'),
    call: $('call'), answer: $('answer'), hangup: $('hangup'),
    status: $('status'), log: $('log'), audio: $('remote-audio'),
  };
  const media = { mediaConstraints: { audio: true, video: false }, pcConfig: { iceServers: [] } };

  let ua = null;      // JsSIP.UA, made on Register (or on Call when not registered)
  let session = null; // the one current JsSIP.RTCSession

  // Exposed for tests and the browser console.
  window.webphone = { get ua() { return ua; }, get session() { return session; } };

  function log(text) {
    const li = document.createElement('li');
    li.textContent = new Date().toISOString().slice(11, 23) + ' ' + text;
    ui.log.appendChild(li);
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  function setStatus(text) {
    ui.status.textContent = text;
    log('status: ' + text);
  }

  function defaultWSURL() {
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    return scheme + (location.host || '127.0.0.1:8080') + '/';
  }

  function presetFields() {
    const q = new URLSearchParams(location.search);
    ui.wsURL.value = q.get('ws') || defaultWSURL();
    for (const [param, input] of [['uri', ui.uri], ['password', ui.password], ['token', ui.token], ['target', ui.target]]) {
      if (q.has(param)) input.value = q.get(param);
    }
  }

  function updateButtons() {
    const registered = ua !== null && ua.isRegistered();
    const inCall = session !== null && !session.isEnded();
    ui.register.disabled = registered;
    ui.unregister.disabled = !registered;
    ui.call.disabled = inCall;
    ui.hangup.disabled = !inCall;
    ui.answer.disabled = !(inCall && session.direction === 'incoming' && !session.isEstablished());
  }

  // iceServersURL is the gateway's /ice-servers beside its WebSocket.
  function iceServersURL() {
    const u = new URL(ui.wsURL.value.trim());
    u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
    u.pathname = '/ice-servers';
    u.search = '';
    return u.toString();
  }

  // loadICEServers asks the gateway for its STUN and TURN servers (TURN
  // credentials of the token's subject in token mode) for every call.
  async function loadICEServers() {
    const headers = {};
    const token = ui.token.value.trim();
    if (token) headers.Authorization = 'Bearer ' + token;
    try {
      const res = await fetch(iceServersURL(), { headers, cache: 'no-store' });
      if (!res.ok) throw new Error('HTTP ' + res.status);
      const ans = await res.json();
      media.pcConfig.iceServers = ans.iceServers;
      const turn = ans.iceServers.some((s) => s.urls.some((u) => u.startsWith('turn')));
      log('ICE servers: ' + ans.iceServers.map((s) => s.urls.join(' ')).join(' ') + (turn ? ' (TURN credentials for ' + ans.ttl + ' s)' : ''));
    } catch (err) {
      log('no ICE servers from the gateway: ' + err.message);
    }
    if (new URLSearchParams(location.search).get('relay') === '1') {
      media.pcConfig.iceTransportPolicy = 'relay';
      log('media through TURN only');
    }
  }

  // wsURLWithToken carries the token on the upgrade (browsers cannot set
  // an Authorization header on a WebSocket).
  function wsURLWithToken() {
    const token = ui.token.value.trim();
    if (!token) return ui.wsURL.value.trim();
    const u = new URL(ui.wsURL.value.trim());
    u.searchParams.set('access_token', token);
    return u.toString();
  }

  // ensureUA makes the user agent once; a changed field needs a page reload.
  function ensureUA() {
    if (ua !== null) return ua;
    const socket = new JsSIP.WebSocketInterface(wsURLWithToken());
    ua = new JsSIP.UA({
      sockets: [socket],
      uri: ui.uri.value.trim(),
      password: ui.password.value,
      register: false,
      session_timers: false,
    });
    ua.on('connecting', () => setStatus('connecting'));
    ua.on('connected', () => setStatus('connected'));
    ua.on('disconnected', () => { setStatus('disconnected'); updateButtons(); });
    ua.on('registered', () => { setStatus('registered'); updateButtons(); });
    ua.on('unregistered', () => { setStatus('unregistered'); updateButtons(); });
    ua.on('registrationFailed', (e) => { setStatus('registration failed: ' + e.cause); updateButtons(); });
    ua.on('newRTCSession', (e) => onNewSession(e.session));
    ua.start();
    return ua;
  }

  function onNewSession(s) {
    if (session !== null && !session.isEnded()) {
      s.terminate({ status_code: 486, reason_phrase: 'Busy Here' });
      log('rejected a second call: busy');
      return;
    }
    session = s;
    const peer = s.remote_identity.uri.toString();
    setStatus(s.direction === 'incoming' ? 'incoming call from ' + peer : 'calling ' + peer);
    s.on('peerconnection', (e) => attachAudio(e.peerconnection));
    if (s.connection) attachAudio(s.connection);
    s.on('progress', () => setStatus('ringing'));
    s.on('confirmed', () => { setStatus('in call'); updateButtons(); });
    s.on('ended', (e) => { setStatus('call ended: ' + e.cause); endSession(); });
    s.on('failed', (e) => { setStatus('call failed: ' + e.cause); endSession(); });
    s.on('newDTMF', (e) => log('DTMF ' + e.originator + ': ' + e.dtmf.tone));
    updateButtons();
  }

  function attachAudio(pc) {
    pc.addEventListener('track', (e) => {
      ui.audio.srcObject = e.streams[0] || new MediaStream([e.track]);
      log('remote audio track');
    });
  }

  function endSession() {
    ui.audio.srcObject = null;
    updateButtons();
  }

  // onClick logs what a JsSIP call throws (bad URI, wrong state) instead of losing it.
  function onClick(button, action) {
    button.addEventListener('click', () => {
      try { action(); } catch (err) { setStatus('error: ' + err.message); }
    });
  }

  // whenConnected runs action now or once the WebSocket is up: JsSIP fails
  // a request sent before that with "Connection Error".
  function whenConnected(action) {
    const agent = ensureUA();
    if (agent.isConnected()) {
      action(agent);
      return;
    }
    agent.once('connected', () => {
      try { action(agent); } catch (err) { setStatus('error: ' + err.message); }
    });
  }

  onClick(ui.register, () => whenConnected((agent) => agent.register()));
  onClick(ui.unregister, () => ua && ua.unregister());
  onClick(ui.call, () => whenConnected((agent) => loadICEServers().then(() => {
    try { agent.call(ui.target.value.trim(), media); } catch (err) { setStatus('error: ' + err.message); }
  })));
  onClick(ui.answer, () => session && loadICEServers().then(() => session.answer(media)));
  onClick(ui.hangup, () => session && !session.isEnded() && session.terminate());
  for (const key of document.querySelectorAll('#keypad [data-key]')) {
    onClick(key, () => {
      if (session === null || !session.isEstablished()) return;
      session.sendDTMF(key.dataset.key, { transportType: 'INFO' });
      log('DTMF sent: ' + key.dataset.key);
    });
  }

  presetFields();
  if (typeof JsSIP === 'undefined') {
    $('lib-missing').hidden = false;
    for (const b of document.querySelectorAll('button')) b.disabled = true;
    setStatus('SIP library missing: run: npm ci --prefix cmd/imsgate/webphone');
    return;
  }
  log('JsSIP ' + JsSIP.version);
  updateButtons();
})();
