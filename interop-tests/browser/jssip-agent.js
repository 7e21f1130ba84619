// window.agent for JsSIP: the same small API as sipjs-agent.js, so the Node
// driver runs one scenario script against either library.
'use strict';

(function () {
  const h = window.harness;
  const media = { mediaConstraints: { audio: true, video: false }, pcConfig: { iceServers: [] } };
  let ua = null;
  let session = null;

  function track(s) {
    session = s;
    const watchPC = (pc) => {
      h.playRemoteAudio(pc);
      h.startStats(pc);
    };
    s.on('peerconnection', (e) => watchPC(e.peerconnection));
    if (s.connection) watchPC(s.connection);
    s.on('progress', (e) => h.emit('progress', e.response ? e.response.status_code : ''));
    s.on('accepted', () => h.emit('accepted'));
    s.on('confirmed', () => h.emit('confirmed'));
    s.on('ended', (e) => { h.emit('ended', e.cause); finish(s); });
    s.on('failed', (e) => { h.emit('failed', e.cause); finish(s); });
  }

  // finish takes a last stats sample before the peer connection closes.
  function finish(s) {
    if (s.connection) h.sample(s.connection).catch(() => {});
    h.stopStats();
  }

  window.agent = {
    library: 'JsSIP ' + JsSIP.version,
    start({ wsURL, uri, password }) {
      ua = new JsSIP.UA({
        sockets: [new JsSIP.WebSocketInterface(wsURL)],
        uri,
        password,
        register: false,
        session_timers: false,
      });
      ua.on('connected', () => h.emit('connected'));
      ua.on('disconnected', () => h.emit('disconnected'));
      ua.on('registered', () => h.emit('registered'));
      ua.on('unregistered', () => h.emit('unregistered'));
      ua.on('registrationFailed', (e) => h.emit('registration_failed', e.cause));
      ua.on('newRTCSession', (e) => {
        track(e.session);
        if (e.originator === 'remote') h.emit('incoming', e.request.from.uri.toString());
      });
      ua.start();
    },
    // JsSIP fails a REGISTER sent before the WebSocket is up; wait for it.
    register() {
      if (ua.isConnected()) ua.register();
      else ua.once('connected', () => ua.register());
    },
    unregister() { ua.unregister(); },
    call(target) { ua.call(target, media); },
    answer() { session.answer(media); },
    // hold and unhold by re-INVITE, or by UPDATE when method is "update".
    hold(method) { session.hold({ useUpdate: method === 'update' }, () => h.emit('held')); },
    unhold(method) { session.unhold({ useUpdate: method === 'update' }, () => h.emit('resumed')); },
    stats() { return h.current(session && session.connection); },
    dtmf(tone) { session.sendDTMF(tone, { transportType: 'INFO' }); },
    hangup() { if (session && !session.isEnded()) session.terminate(); },
    stop() { if (ua) ua.stop(); },
  };
  h.emit('loaded');
})();
