// The imsgate status page: live counters, charts of the last hour, the
// calls up and ended with each leg's quality, and a call's timeline drawn as
// a ladder of both legs. It reads /api/stats and /api/calls on the admin
// listener, with the admin token when one is set. Everything from the
// network is put in the page as text, never as markup.
'use strict';

(function () {
  const refreshMs = 2000;
  let token = sessionStorage.getItem('imsgate-admin-token') || '';
  let selected = null; // the call whose ladder is shown
  const charts = {};

  const $ = (id) => document.getElementById(id);

  async function api(path) {
    const headers = token ? { Authorization: 'Bearer ' + token } : {};
    const res = await fetch(path, { headers, cache: 'no-store' });
    if (res.status === 401) throw Object.assign(new Error('the admin token is needed'), { auth: true });
    if (!res.ok) throw new Error(path + ': ' + res.status);
    return res.json();
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function mosClass(m) { return m >= 4 ? 'good' : m >= 3.6 ? 'warn' : 'bad'; }

  // legCell shows a leg's quality: MOS, loss each way, jitter, round trip.
  function legCell(q) {
    const td = el('td');
    if (!q || !q.mos) { td.append(el('span', 'no media', 'muted')); return td; }
    td.append(el('span', 'MOS ' + q.mos.toFixed(2), 'mos ' + mosClass(q.mos)));
    const parts = ['loss ' + q.loss_percent.toFixed(1) + '% in'];
    if (q.reported) parts.push(q.remote_loss_percent.toFixed(1) + '% out');
    parts.push('jitter ' + q.jitter_ms.toFixed(1) + (q.reported ? ' / ' + q.remote_jitter_ms.toFixed(1) : '') + ' ms');
    if (q.rtt_ms) parts.push('RTT ' + q.rtt_ms.toFixed(0) + ' ms');
    td.append(el('div', parts.join(', '), 'muted'));
    return td;
  }

  function seconds(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    return s >= 60 ? Math.floor(s / 60) + ' min ' + (s % 60) + ' s' : s + ' s';
  }

  function card(key, value, cls) {
    const c = el('div', null, 'card');
    c.append(el('div', value, 'v' + (cls ? ' ' + cls : '')), el('div', key, 'k'));
    return c;
  }

  function showCards(now, history) {
    const cards = $('cards');
    cards.replaceChildren();
    let started = 0, ended = 0;
    for (const p of history) { started += p.started; ended += p.ended; }
    cards.append(card('calls up', now.calls_active), card('registrations', now.registrations),
      card('WebSocket connections', now.ws_connections), card('calls started, last hour', started),
      card('calls ended, last hour', ended));
    for (const u of now.upstreams || []) {
      cards.append(card('upstream ' + u.uri + (u.current ? ' (in use)' : ''), u.up ? 'up' : 'down', u.up ? 'mos good' : 'mos bad'));
    }
    const ready = $('ready');
    ready.textContent = now.ready ? 'ready' : 'not ready: ' + now.not_ready;
    ready.className = 'pill ' + (now.ready ? 'good' : 'bad');
  }

  // chart draws one series of the history with uPlot, made once and fed after.
  function chart(id, label, points, value, color, range) {
    const xs = [], ys = [];
    for (const p of points) { xs.push(Date.parse(p.at) / 1000); ys.push(value(p)); }
    const data = [xs, ys];
    if (charts[id]) { charts[id].setData(data); return; }
    const box = $(id);
    charts[id] = new uPlot({
      width: Math.max(320, box.clientWidth || 360), height: 180,
      series: [{}, { label, stroke: color, width: 2, spanGaps: false, points: { show: true, size: 4 } }],
      axes: [{}, { size: 50 }],
      // Always the last hour, however few points there are yet.
      scales: Object.assign({ x: { time: true, range: () => { const t = Date.now() / 1000; return [t - 3600, t]; } } },
        range ? { y: { range } } : {}),
      legend: { show: false },
    }, data, box);
  }

  function showCharts(history) {
    chart('chart-calls', 'calls up', history, (p) => p.calls_active, '#2b6cb0');
    chart('chart-setup', 'setup ms', history, (p) => (p.setup_ms ? p.setup_ms : null), '#b7791f');
    chart('chart-mos', 'MOS', history, (p) => (p.mos ? p.mos : null), '#2f855a', [1, 4.5]);
  }

  function callRow(c, active) {
    const tr = el('tr');
    tr.dataset.id = c.id;
    if (c.id === selected) tr.className = 'selected';
    tr.append(el('td', c.id), el('td', (c.caller || '?') + ' → ' + (c.callee || '?')));
    if (active) {
      tr.append(el('td', c.state), el('td', seconds(Date.now() - Date.parse(c.started))));
    } else {
      const end = c.end_reason + ' by ' + c.ended_by + (c.status ? ' (' + c.status + ')' : '');
      tr.append(el('td', end), el('td', seconds(Date.parse(c.ended) - Date.parse(c.started))));
    }
    tr.append(legCell(c.qos && c.qos.web), legCell(c.qos && c.qos.core));
    tr.addEventListener('click', () => { selected = c.id; refresh(); });
    return tr;
  }

  function showCalls(list) {
    for (const [name, calls, active] of [['active', list.active, true], ['ended', list.ended.slice(0, 20), false]]) {
      const body = $(name).querySelector('tbody');
      body.replaceChildren(...calls.map((c) => callRow(c, active)));
      $(name).hidden = calls.length === 0;
      $(name + '-none').hidden = calls.length !== 0;
    }
  }

  // The ladder: three lanes (the browser, imsgate, the core); a SIP message
  // is an arrow between imsgate and its leg's far end, everything else a
  // note by imsgate's lane; time runs down, offsets from the call's start.
  const lanes = { browser: 170, gateway: 470, core: 770 };
  const svgNS = 'http://www.w3.org/2000/svg';

  function svg(tag, attrs, text) {
    const e = document.createElementNS(svgNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function sipLabel(first) {
    const m = /^SIP\/2\.0 (\d{3}) ?(.*)$/.exec(first);
    if (m) return m[1] + ' ' + m[2];
    return first.split(' ')[0];
  }

  function showLadder(c) {
    $('ladder-section').hidden = false;
    $('ladder-title').textContent = c.id;
    const legs = 'web ' + (c.web_call_id || '—') + ' · core ' + (c.core_call_id || '—');
    $('ladder-summary').textContent = (c.caller || '') + ' → ' + (c.callee || '') + ' · ' + legs +
      (c.end_reason ? ' · ended: ' + c.end_reason + ' by ' + c.ended_by : ' · ' + c.state) +
      (c.dropped_events ? ' · ' + c.dropped_events + ' events not kept' : '');
    const rowH = 24, lineH = 15, top = 40;
    const events = c.events || [];
    // A note's parts ("web …; core …") each take a line of their own.
    const lines = events.map((ev) => (ev.kind === 'sip' ? [ev.text] : (ev.kind + ': ' + ev.text).split('; ')));
    const ys = [];
    let y0 = top + 12;
    for (const l of lines) { ys.push(y0); y0 += rowH + lineH * (l.length - 1); }
    const height = y0 + rowH;
    const root = svg('svg', { width: 1000, height, viewBox: `0 0 1000 ${height}` });
    root.append(svg('defs', {}));
    const marker = svg('marker', { id: 'head', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
    marker.append(svg('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#4a5568' }));
    root.firstChild.append(marker);
    for (const [name, x] of [['Browser', lanes.browser], ['imsgate', lanes.gateway], ['Core', lanes.core]]) {
      root.append(svg('text', { x, y: 18, class: 'lane-name' }, name));
      root.append(svg('line', { x1: x, y1: 26, x2: x, y2: height, class: 'lane' }));
    }
    const t0 = Date.parse(c.started);
    events.forEach((ev, i) => {
      const y = ys[i];
      root.append(svg('text', { x: 8, y: y + 4, class: 't' }, '+' + ((Date.parse(ev.at) - t0) / 1000).toFixed(3) + ' s'));
      if (ev.kind === 'sip') {
        const far = ev.leg === 'web' ? lanes.browser : lanes.core;
        const [x1, x2] = ev.dir === 'in' ? [far, lanes.gateway] : [lanes.gateway, far];
        const status = /^SIP\/2\.0 (\d)/.exec(ev.text);
        const cls = 'arrow' + (status ? (Number(status[1]) >= 3 ? ' fail' : ' resp') : '');
        root.append(svg('line', { x1, y1: y, x2, y2: y, class: cls, 'marker-end': 'url(#head)' }));
        const label = svg('text', { x: (x1 + x2) / 2, y: y - 4, 'text-anchor': 'middle' }, sipLabel(ev.text));
        label.append(svg('title', {}, ev.text + '\n' + ev.from + ' → ' + ev.to + ' (' + ev.transport + ')'));
        root.append(label);
      } else {
        root.append(svg('circle', { cx: lanes.gateway, cy: y, r: 4, fill: '#4a5568' }));
        lines[i].forEach((line, j) => {
          root.append(svg('text', { x: lanes.gateway + 10 + (j ? 14 : 0), y: y + 4 + j * lineH, class: 'note ' + ev.kind }, line));
        });
      }
    });
    $('ladder').replaceChildren(root);
  }

  async function refresh() {
    try {
      const [stats, list] = await Promise.all([api('api/stats'), api('api/calls')]);
      $('login').hidden = true;
      $('main').hidden = false;
      showCards(stats.now, stats.history);
      showCharts(stats.history);
      showCalls(list);
      if (selected) showLadder(await api('api/calls/' + encodeURIComponent(selected)));
      $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
      document.body.dataset.loaded = 'yes';
    } catch (err) {
      if (err.auth) {
        $('login').hidden = false;
        $('main').hidden = true;
        $('login-error').textContent = token ? 'that token was refused' : '';
      } else {
        $('updated').textContent = 'not updated: ' + err.message;
      }
    }
  }

  $('login').addEventListener('submit', (e) => {
    e.preventDefault();
    token = $('token').value;
    sessionStorage.setItem('imsgate-admin-token', token);
    refresh();
  });
  const fromURL = new URLSearchParams(location.search).get('call');
  if (fromURL) selected = fromURL;
  refresh();
  setInterval(refresh, refreshMs);
})();
