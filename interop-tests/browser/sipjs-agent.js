// window.agent for SIP.js (ES module build from node_modules): the same small
// API as jssip-agent.js.
import {
  Inviter, Messager, Publisher, Registerer, RegistererState, SessionState, Subscriber, SubscriptionState,
  UserAgent, version,
} from '/node_modules/sip.js/lib/index.js';

const h = window.harness;
const sdhOptions = { constraints: { audio: true, video: false } };
let ua = null;
let registerer = null;
let started = Promise.resolve(); // ua.start(): requests wait for the WebSocket
let session = null;
let established = false;
let registering = false; // register() was called: registers again after a reconnection
let subscriber = null; // subscribe()'s Subscriber
let publisher = null; // publish()'s Publisher
let publishing = 'publish_done'; // the event the Publisher's next final response is

function track(s) {
  session = s;
  established = false;
  // In-dialog requests from the far end, answered as SIP.js would alone.
  s.delegate = {
    // A DTMF INFO reports its digit (Signal=), any other its content type.
    onInfo: (info) => {
      const signal = /^Signal=\s*(\S+)/m.exec(info.request.body || '');
      const type = info.request.getHeader('content-type') || '';
      h.emit('info_in', type.startsWith('application/dtmf-relay') && signal ? signal[1] : type);
      info.accept();
    },
    onInvite: (request) => h.emit('reinvite', h.direction(request.body)),
  };
  s.stateChange.addListener((state) => {
    switch (state) {
      case SessionState.Established: {
        established = true;
        const pc = s.sessionDescriptionHandler.peerConnection;
        h.playRemoteAudio(pc);
        h.startStats(pc);
        h.emit('confirmed');
        break;
      }
      case SessionState.Terminated: {
        const sdh = s.sessionDescriptionHandler;
        if (sdh && sdh.peerConnection) h.sample(sdh.peerConnection).catch(() => {});
        h.stopStats();
        h.emit(established ? 'ended' : 'failed');
        break;
      }
      default:
    }
  });
}

// sendInfo emits <what>_sent on a 2xx, <what>_failed otherwise.
function sendInfo(contentType, content, what) {
  session.info({
    requestDelegate: {
      onAccept: () => h.emit(what + '_sent'),
      onReject: (res) => h.emit(what + '_failed', res.message.statusCode),
    },
    requestOptions: { body: { contentDisposition: 'render', contentType, content } },
  }).catch((err) => h.emit(what + '_failed', err.message));
}

function reinvite(hold, done) {
  session.invite({
    sessionDescriptionHandlerOptions: { ...sdhOptions, hold },
    requestDelegate: {
      onAccept: () => h.emit(done),
      onReject: (res) => h.emit(done + '_failed', res.message.statusCode),
    },
  }).catch((err) => h.emit(done + '_failed', err.message));
}

window.agent = {
  library: 'SIP.js ' + version,
  // iceServers and iceTransportPolicy ('all', 'relay') go into every
  // call's RTCConfiguration (SIP.js's peerConnectionConfiguration).
  start({ wsURL, uri, password, iceServers, iceTransportPolicy }) {
    const target = UserAgent.makeURI(uri);
    const peerConnectionConfiguration = { iceServers: iceServers || [] };
    if (iceTransportPolicy) peerConnectionConfiguration.iceTransportPolicy = iceTransportPolicy;
    ua = new UserAgent({
      uri: target,
      transportOptions: { server: wsURL },
      // After a drop SIP.js reconnects at once (UserAgent.attemptReconnection);
      // the Registerer does not register again by itself: onConnect does.
      reconnectionAttempts: 3,
      reconnectionDelay: 2,
      authorizationUsername: target.user,
      authorizationPassword: password,
      sessionDescriptionHandlerFactoryOptions: {
        peerConnectionConfiguration,
        iceGatheringTimeout: 1000,
      },
      delegate: {
        onConnect: () => {
          h.emit('connected');
          if (registering) window.agent.register();
        },
        onDisconnect: () => h.emit('disconnected'),
        onMessage: (message) => {
          const req = message.request;
          message.accept().catch((err) => h.emit('message_accept_failed', err.message));
          h.emit('message_in', h.message(req.from.uri.toString(), req.getHeader('content-type'), req.body));
        },
        onInvite: (invitation) => {
          track(invitation);
          h.emit('incoming', invitation.remoteIdentity.uri.toString());
        },
      },
    });
    registerer = new Registerer(ua);
    // 'registered' on every 200, a refresh after a reconnection included
    // (the Registerer stays Registered through a drop).
    registerer.stateChange.addListener((state) => {
      if (state === RegistererState.Unregistered) h.emit('unregistered');
    });
    started = ua.start().catch((err) => h.emit('connect_failed', err.message));
  },
  register() {
    registering = true;
    started.then(() => registerer.register({
      requestDelegate: {
        onAccept: () => h.emit('registered'),
        onReject: (res) => h.emit('registration_failed', res.message.statusCode),
      },
    })).catch((err) => h.emit('registration_failed', err.message));
  },
  unregister() {
    registering = false;
    registerer.unregister().catch((err) => h.emit('unregister_failed', err.message)); },
  call(target) {
    // earlyMedia: a 18x's SDP is applied, so early media is heard.
    const inviter = new Inviter(ua, UserAgent.makeURI(target), { sessionDescriptionHandlerOptions: sdhOptions, earlyMedia: true });
    track(inviter);
    inviter.invite({
      requestDelegate: {
        onProgress: (res) => h.emit('progress', res.message.statusCode),
        onAccept: () => h.emit('accepted'),
      },
    }).catch((err) => h.emit('failed', err.message));
  },
  answer() { session.accept({ sessionDescriptionHandlerOptions: sdhOptions }).catch((err) => h.emit('answer_failed', err.message)); },
  // hold and unhold: SIP.js 0.21 re-INVITEs with its transceivers set by
  // sessionDescriptionHandlerOptions.hold (sendonly, then sendrecv).
  hold() { reinvite(true, 'held'); },
  unhold() { reinvite(false, 'resumed'); },
  stats() {
    const sdh = session && session.sessionDescriptionHandler;
    return h.current(sdh && sdh.peerConnection);
  },
  // DTMF as SIP INFO, application/dtmf-relay (the body JsSIP sends too).
  dtmf(tone) { sendInfo('application/dtmf-relay', `Signal=${tone}\r\nDuration=100\r\n`, 'dtmf'); },
  // dtmfRTP: RFC 4733 events through the peer connection's RTCDTMFSender.
  dtmfRTP(tone) {
    if (session.sessionDescriptionHandler.sendDtmf(tone, { duration: 100, interToneGap: 100 })) h.emit('dtmf_rtp_sent', tone);
    else h.emit('dtmf_rtp_failed', tone);
  },
  info(contentType, body) { sendInfo(contentType, body, 'info'); },
  // message: a MESSAGE outside a dialog (RFC 3428); SIP.js answers the
  // core's challenge itself; message_sent is the final 2xx.
  message(target, body, contentType) {
    started.then(() => new Messager(ua, UserAgent.makeURI(target), body, contentType).message({
      requestDelegate: {
        onAccept: (res) => h.emit('message_sent', res.message.statusCode),
        onReject: (res) => h.emit('message_failed', res.message.statusCode),
      },
    })).catch((err) => h.emit('message_failed', err.message));
  },
  // subscribe: a subscription (RFC 6665) to target with a SIP.js
  // Subscriber (which answers the core's challenge itself); subscribed on
  // the first NOTIFY, each NOTIFY through harness.notify (accepted 200),
  // subscription_terminated when it ends.
  subscribe(target, event, accept) {
    started.then(() => {
      subscriber = new Subscriber(ua, UserAgent.makeURI(target), event, { expires: 600, extraHeaders: ['Accept: ' + accept] });
      subscriber.delegate = {
        onNotify: (notification) => {
          const req = notification.request;
          notification.accept().catch((err) => h.emit('notify_accept_failed', err.message));
          h.notify(event, req.getHeader('subscription-state'), req.getHeader('content-type'), req.body);
        },
      };
      subscriber.stateChange.addListener((state) => {
        if (state === SubscriptionState.Subscribed) h.emit('subscribed');
        if (state === SubscriptionState.Terminated) h.emit('subscription_terminated');
      });
      return subscriber.subscribe();
    }).catch((err) => h.emit('subscription_failed', err.message));
  },
  // unsubscribe: SUBSCRIBE with Expires: 0 in the subscription's dialog.
  unsubscribe() { subscriber.unsubscribe().catch((err) => h.emit('unsubscribe_failed', err.message)); },
  // publish: body as the event state of target (RFC 3903) with one SIP.js
  // Publisher per page: its first PUBLISH creates the state, later ones
  // modify it (SIP-If-Match: the last SIP-ETag). publish_done (detail: the
  // status) on each final response, after SIP.js answered any challenge.
  publish(target, event, body, contentType) {
    started.then(() => {
      if (!publisher) {
        publisher = new Publisher(ua, UserAgent.makeURI(target), event, { contentType, expires: 600 });
        // Every response reaches Publisher.receiveResponse; a final one
        // (after any 401/407, which SIP.js answers below it) is reported.
        const receive = publisher.receiveResponse.bind(publisher);
        publisher.receiveResponse = (res) => {
          if (res.statusCode >= 200) h.emit(publishing, res.statusCode);
          receive(res);
        };
      }
      publishing = 'publish_done';
      return publisher.publish(body);
    }).catch((err) => h.emit('publish_failed', err.message));
  },
  // unpublish: the PUBLISH removing the state (Expires: 0, SIP-If-Match);
  // unpublish_done (detail: the status) on its final response.
  unpublish() {
    publishing = 'unpublish_done';
    publisher.unpublish().catch((err) => h.emit('publish_failed', err.message));
  },
  // watchNotify reports NOTIFYs outside any subscription (a voicemail
  // server's message-summary) through harness.notify and accepts them;
  // without a delegate SIP.js refuses them (481).
  watchNotify() {
    ua.delegate.onNotify = (notification) => {
      const req = notification.request;
      notification.accept().catch((err) => h.emit('notify_accept_failed', err.message));
      h.notify(req.getHeader('event'), req.getHeader('subscription-state'), req.getHeader('content-type'), req.body);
    };
  },
  hangup() {
    if (!session) return;
    switch (session.state) {
      case SessionState.Initial:
      case SessionState.Establishing:
        if (session instanceof Inviter) session.cancel();
        else session.reject();
        break;
      case SessionState.Established:
        session.bye();
        break;
      default:
    }
  },
  stop() { if (ua) ua.stop().catch(() => {}); },
};
h.emit('loaded');
