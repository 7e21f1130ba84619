// window.agent for SIP.js (ES module build from node_modules): the same small
// API as jssip-agent.js.
import {
  Inviter, Registerer, RegistererState, SessionState, UserAgent, version,
} from '/node_modules/sip.js/lib/index.js';

const h = window.harness;
const sdhOptions = { constraints: { audio: true, video: false } };
let ua = null;
let registerer = null;
let started = Promise.resolve(); // ua.start(): requests wait for the WebSocket
let session = null;
let established = false;

function track(s) {
  session = s;
  established = false;
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
  start({ wsURL, uri, password }) {
    const target = UserAgent.makeURI(uri);
    ua = new UserAgent({
      uri: target,
      transportOptions: { server: wsURL },
      authorizationUsername: target.user,
      authorizationPassword: password,
      sessionDescriptionHandlerFactoryOptions: {
        peerConnectionConfiguration: { iceServers: [] },
        iceGatheringTimeout: 1000,
      },
      delegate: {
        onConnect: () => h.emit('connected'),
        onDisconnect: () => h.emit('disconnected'),
        onInvite: (invitation) => {
          track(invitation);
          h.emit('incoming', invitation.remoteIdentity.uri.toString());
        },
      },
    });
    registerer = new Registerer(ua);
    registerer.stateChange.addListener((state) => {
      if (state === RegistererState.Registered) h.emit('registered');
      if (state === RegistererState.Unregistered) h.emit('unregistered');
    });
    started = ua.start().catch((err) => h.emit('connect_failed', err.message));
  },
  register() {
    started.then(() => registerer.register({
      requestDelegate: { onReject: (res) => h.emit('registration_failed', res.message.statusCode) },
    })).catch((err) => h.emit('registration_failed', err.message));
  },
  unregister() { registerer.unregister().catch((err) => h.emit('unregister_failed', err.message)); },
  call(target) {
    const inviter = new Inviter(ua, UserAgent.makeURI(target), { sessionDescriptionHandlerOptions: sdhOptions });
    track(inviter);
    inviter.invite({
      requestDelegate: {
        onProgress: (res) => h.emit('progress', res.message.statusCode),
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
  dtmf(tone) {
    session.info({
      requestOptions: {
        body: { contentDisposition: 'render', contentType: 'application/dtmf-relay', content: `Signal=${tone}\r\nDuration=100\r\n` },
      },
    }).catch((err) => h.emit('dtmf_failed', err.message));
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
