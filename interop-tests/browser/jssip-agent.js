// window.agent for JsSIP: the same small API as sipjs-agent.js, so the Node
// driver runs one scenario script against either library.
'use strict';

(function () {
  const h = window.harness;
  const media = { mediaConstraints: { audio: true, video: false }, pcConfig: { iceServers: [] } };
  let ua = null;
  let session = null;
  let referral = null; // the far end's REFER: its 'refer' event
  let subscriber = null; // subscribe()'s JsSIP Subscriber

  // mediaVia ("port:other") makes the page reach the gateway's media at
  // another port on the same address, where the test's impairing relay
  // listens: the remote SDP's candidate and m= port are rewritten.
  let mediaVia = null;

  function track(s) {
    session = s;
    if (mediaVia) {
      s.on('sdp', (e) => {
        if (e.originator !== 'remote') return;
        e.sdp = e.sdp.replace(new RegExp(`(a=candidate:.* )${mediaVia.from}( typ )`, 'g'), `$1${mediaVia.to}$2`)
          .replace(new RegExp(`^m=audio ${mediaVia.from} `, 'm'), `m=audio ${mediaVia.to} `);
      });
    }
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
    // In-dialog requests from the far end; INFO with application/dtmf-relay
    // is JsSIP's newDTMF, any other INFO its newInfo.
    s.on('newDTMF', (e) => { if (e.originator === 'remote') h.emit('info_in', e.dtmf.tone); });
    s.on('newInfo', (e) => {
      if (e.originator === 'remote') {
        h.emit('info_in', e.info.contentType);
        return;
      }
      e.info.on('succeeded', () => h.emit('info_sent'));
      e.info.on('failed', (f) => h.emit('info_failed', f.cause));
    });
    s.on('reinvite', (e) => h.emit('reinvite', h.direction(e.request.body)));
    s.on('refer', (e) => { referral = e; h.emit('refer', e.request.refer_to.uri.toString()); });
  }

  // finish takes a last stats sample before the peer connection closes; a
  // transferred call's old session ends while the new one is sampled.
  function finish(s) {
    if (s.connection) h.sample(s.connection).catch(() => {});
    if (s === session) h.stopStats();
  }

  window.agent = {
    library: 'JsSIP ' + JsSIP.version,
    // iceServers and iceTransportPolicy ('all', 'relay') go into every
    // call's RTCConfiguration (JsSIP's pcConfig).
    start({ wsURL, uri, password, iceServers, iceTransportPolicy, mediaVia: via }) {
      if (via) {
        const [from, to] = via.split(':');
        mediaVia = { from, to };
      }
      media.pcConfig.iceServers = iceServers || [];
      if (iceTransportPolicy) media.pcConfig.iceTransportPolicy = iceTransportPolicy;
      ua = new JsSIP.UA({
        sockets: [new JsSIP.WebSocketInterface(wsURL)],
        uri,
        password,
        register: false,
        session_timers: false,
        // JsSIP's default, written down: after a drop it reconnects after
        // 2 s (Transport.js _reconnect), then registers again by itself.
        connection_recovery_min_interval: 2,
      });
      ua.on('connected', () => h.emit('connected'));
      // disconnected: the WebSocket's close code and reason, when it had
      // them ("1008 token expired"; 1006 for a connection never opened).
      ua.on('disconnected', (e) => h.emit('disconnected', e && e.code !== undefined ? `${e.code} ${e.reason || ''}`.trim() : ''));
      ua.on('registered', () => h.emit('registered'));
      ua.on('unregistered', () => h.emit('unregistered'));
      ua.on('registrationFailed', (e) => h.emit('registration_failed', e.cause));
      // JsSIP answers a MESSAGE 200 itself (Message.init_incoming).
      ua.on('newMessage', (e) => {
        if (e.originator !== 'remote') return;
        h.emit('message_in', h.message(e.request.from.uri.toString(), e.request.getHeader('Content-Type'), e.request.body));
      });
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
    // dtmfRTP: RFC 4733 events through the peer connection's RTCDTMFSender.
    dtmfRTP(tone) {
      session.sendDTMF(tone, { transportType: 'RFC2833', duration: 100, interToneGap: 100 });
      h.emit('dtmf_rtp_sent', tone);
    },
    info(contentType, body) { session.sendInfo(contentType, body); },
    // refer: a blind transfer; the ReferSubscriber's events (202, NOTIFY
    // sipfrag 100 / 1xx / 2xx, failures) become refer_<event>.
    refer(target) {
      const names = ['requestSucceeded', 'requestFailed', 'trying', 'progress', 'accepted', 'failed'];
      const eventHandlers = {};
      const code = (e) => (e && (e.response || e.status_line) ? (e.response || e.status_line).status_code : '');
      for (const n of names) eventHandlers[n] = (e) => h.emit('refer_' + n, code(e));
      session.refer(target, { eventHandlers });
    },
    // acceptRefer places the call the far end's REFER asks for; JsSIP
    // NOTIFYs the far end of its progress.
    acceptRefer() { referral.accept(null, media); },
    // message: a MESSAGE outside a dialog (RFC 3428); JsSIP answers the
    // core's challenge itself; message_sent is the final 2xx.
    message(target, body, contentType) {
      ua.sendMessage(target, body, { contentType, eventHandlers: {
        succeeded: (e) => h.emit('message_sent', e.response.status_code),
        failed: (e) => h.emit('message_failed', e.response ? e.response.status_code : e.cause),
      } });
    },
    // subscribe: a subscription (RFC 6665) to target with JsSIP 3.12's
    // Subscriber; JsSIP answers
    // the core's challenge itself. subscription_accepted on its 2xx,
    // subscribed on the first active NOTIFY, each NOTIFY with a body through
    // harness.notify, subscription_terminated with JsSIP's code and reason.
    subscribe(target, event, accept) {
      subscriber = ua.subscribe(target, event, accept, { expires: 600 });
      subscriber.on('accepted', () => h.emit('subscription_accepted'));
      subscriber.on('active', () => h.emit('subscribed'));
      subscriber.on('notify', (isFinal, request, body, contentType) =>
        h.notify(event, request.getHeader('Subscription-State'), contentType, body));
      subscriber.on('terminated', (code, reason) => h.emit('subscription_terminated', reason ? `${code} ${reason}` : String(code)));
      subscriber.subscribe();
    },
    // unsubscribe: SUBSCRIBE with Expires: 0 in the subscription's dialog.
    unsubscribe() { subscriber.terminate(); },
    // watchNotify reports NOTIFYs outside any subscription (a voicemail
    // server's message-summary) through harness.notify; JsSIP's UA answers
    // them 200 itself ('sipEvent').
    watchNotify() {
      ua.on('sipEvent', (e) => h.notify(e.event ? e.event.event : '', e.request.getHeader('Subscription-State'),
        e.request.getHeader('Content-Type'), e.request.body));
    },
    hangup() { if (session && !session.isEnded()) session.terminate(); },
    stop() { if (ua) ua.stop(); },
  };
  h.emit('loaded');
})();
