// caplab page client. Our own small script, no dependencies, no build step.
// It keeps the page live from the /ws stream (state, operation, fault,
// reset and fragment frames), animates the map, draws the space-time
// diagram, and sends the presenter's actions to the JSON API (API.md).
// window.caplab is the extension point for the lesson panel: on(type, fn)
// subscribes to frames, state() returns the latest State, api() calls the API.
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const body = document.body;
  const presenter = body.dataset.role === 'presenter';
  const SVGNS = 'http://www.w3.org/2000/svg';
  const icons = { ok: '✓', sold_out: '∅', unavailable: '⊘', fail_fast: '⚡', conflict: '↺' };
  const words = { ok: 'ok', sold_out: 'sold out', unavailable: 'unavailable', fail_fast: 'fail fast', conflict: 'conflict' };
  const listeners = {};

  let state = null;
  let sku = body.dataset.sku || 'IPHONE-15-PRO';
  let store = 'consensus';
  // every store the page offers (its store switch lists the lab's stores)
  const STORES = Array.from(document.querySelectorAll('input[name="store"]')).map((i) => i.value);
  let ops = [];     // operations of the current SKU, oldest first
  let faults = [];  // faults, oldest first
  const traffic = {}; // lane id -> {rate, bytesRate, phase, dots, x1,y1,x2,y2, up, dur}
  let prevCounters = null; // {laneId: {bytes, messages, at}}

  // ---------- small helpers
  function toast(msg, isError) {
    const t = $('toast');
    if (!t) return;
    t.textContent = msg;
    t.classList.toggle('error', !!isError);
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.textContent = ''; }, isError ? 7000 : 3500);
  }
  function joinAnd(xs) {
    if (!xs || xs.length === 0) return '';
    if (xs.length === 1) return xs[0];
    return xs.slice(0, -1).join(', ') + ' and ' + xs[xs.length - 1];
  }
  function svg(tag, attrs, text) {
    const el = document.createElementNS(SVGNS, tag);
    for (const k in attrs) el.setAttribute(k, attrs[k]);
    if (text !== undefined) el.textContent = text;
    return el;
  }
  function emit(type, payload) {
    (listeners[type] || []).forEach((fn) => { try { fn(payload); } catch (e) { console.error(e); } });
  }
  function regionNames() { return state ? state.regions.map((r) => r.name) : []; }
  function storeShort(s) { return ({ consensus: 'CP', replicated: 'AP', geo: 'GEO' })[s] || s; }

  // ---------- API
  async function api(method, path, payload) {
    const init = { method, headers: {}, credentials: 'same-origin' };
    if (payload !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(payload);
    }
    let res, data = null;
    try {
      res = await fetch(path, init);
      data = await res.json().catch(() => null);
    } catch (e) {
      toast('The lab did not answer: ' + e.message, true);
      return { ok: false, status: 0, data: null };
    }
    if (data && data.error) toast(data.error, true);
    return { ok: res.ok, status: res.status, data };
  }
  async function busy(btn, fn) {
    if (btn) { btn.classList.add('busy'); btn.setAttribute('aria-busy', 'true'); }
    try { return await fn(); } finally {
      if (btn) { btn.classList.remove('busy'); btn.removeAttribute('aria-busy'); }
    }
  }

  // ---------- outcomes
  function outcomeSentence(o) {
    let msg = (o.message || '').trim();
    if (!msg) {
      if (o.op === 'read' && o.outcome === 'ok') msg = o.quantity + ' in stock.';
      else msg = words[o.outcome] || o.outcome;
    }
    if (!/[.!?]$/.test(msg)) msg += '.';
    const ms = Math.round(o.latencyMs || 0) + ' ms';
    let who;
    if (o.outcome === 'fail_fast') who = 'nothing was sent';
    else if (o.answeredBy && o.answeredBy.length) who = (o.outcome === 'ok' ? 'confirmed by ' : 'answered by ') + joinAnd(o.answeredBy);
    else who = 'no region answered';
    return msg + ' ' + ms + ', ' + who + '.';
  }
  function showOutcome(o) {
    const el = $('outcome-' + o.region);
    if (!el) return;
    el.className = 'outcome o-' + o.outcome;
    el.textContent = '';
    const tag = document.createElement('span');
    tag.className = 'tag';
    const what = o.op === 'read' ? 'read' : o.op === 'stock' ? 'stock' : 'buy';
    tag.textContent = (icons[o.outcome] || '') + ' ' + (words[o.outcome] || o.outcome) + ' · ' + what + ' · ' + storeShort(o.store) + ' ';
    el.appendChild(tag);
    el.appendChild(document.createTextNode(outcomeSentence(o)));
  }

  // ---------- state -> map, shops, quorum
  function applyState(st) {
    const names = st.regions.map((r) => r.name).join(',');
    const domNames = Array.from(document.querySelectorAll('#regions .region')).map((g) => g.dataset.region).join(',');
    if (domNames && names !== domNames) { location.reload(); return; }
    state = st;
    for (const r of st.regions) {
      const g = $('region-' + r.name);
      if (!g) continue;
      const role = !r.up ? 'crashed' : (r.consensus.role || 'offline');
      g.setAttribute('class', 'region role-' + role + (r.up ? '' : ' down'));
      $('region-' + r.name + '-role').textContent = role === 'leader' ? '♛ leader' : role === 'crashed' ? '✕ crashed' : role;
      $('region-' + r.name + '-term').textContent = r.up ? 'term ' + r.consensus.term : 'down';
      const b = r.breakers || {};
      const bc = b.consensus || 'closed', br = b.replicated || 'closed';
      const bt = $('region-' + r.name + '-breakers');
      bt.textContent = 'CP ' + bc + ' · AP ' + br;
      bt.setAttribute('class', 'breakers' + (bc !== 'closed' || br !== 'closed' ? ' open' : ''));
      g.setAttribute('aria-label', r.name + ' (' + r.city + '): ' + role + ', term ' + r.consensus.term + ', breakers CP ' + bc + ', AP ' + br + '. Enter opens crash, restart, make leader, isolate.');
      const shop = $('shop-' + r.name);
      if (shop) shop.classList.toggle('down', !r.up);
      for (const z of r.zones || []) { // geo store: one mark per zone, its member's role in the regional group
        const m = $('zone-' + z.name);
        if (!m) continue;
        const zr = z.up ? z.role : 'crashed';
        m.setAttribute('class', 'zone zone-' + zr);
        m.firstChild && (m.firstChild.textContent = z.name + ': ' + zr + ' of ' + r.name + "'s regional group");
      }
    }
    const links = {};
    for (const l of st.links) links[l.from + '>' + l.to] = l;
    const now = performance.now();
    const next = {};
    document.querySelectorAll('#links .link').forEach((g) => {
      const a = g.dataset.a, b = g.dataset.b;
      const f = links[a + '>' + b] || { state: 'up', rttMs: 0, bytes: 0, messages: 0 };
      const rv = links[b + '>' + a] || { state: 'up', rttMs: 0, bytes: 0, messages: 0 };
      const ls = f.state === 'cut' && rv.state === 'cut' ? 'cut' : (f.state === 'cut' || rv.state === 'cut') ? 'oneway' : 'up';
      g.setAttribute('class', 'link link-' + ls);
      g.dataset.state = ls;
      g.dataset.rtt = Math.round(f.rttMs);
      let label = Math.round(f.rttMs) + ' ms' + (f.estimated ? ' (est.)' : '');
      if (ls === 'cut') label = '✂ cut';
      else if (f.state === 'cut') label = '✂ ' + a + ' → ' + b + ' cut';
      else if (rv.state === 'cut') label = '✂ ' + b + ' → ' + a + ' cut';
      $(g.id + '-label').textContent = label;
      const aria = 'Link ' + a + ' to ' + b + ': ' + label.replace('✂ ', '') + '. Enter cuts or heals both ways; Shift+Enter for one-way cuts and latency.';
      g.setAttribute('aria-label', aria);
      const t = g.querySelector('title');
      if (t) t.textContent = aria;
      let msgs = 0;
      [[f, 'fwd'], [rv, 'rev']].forEach(([l, dir]) => {
        const lane = $(g.id + '-' + dir);
        lane.setAttribute('class', 'lane lane-' + l.state);
        const id = g.id + '-' + dir;
        next[id] = { bytes: l.bytes, messages: l.messages, at: now };
        const tr = traffic[id] || (traffic[id] = { rate: 0, bytesRate: 0, phase: Math.random(), dots: [] });
        tr.x1 = +lane.getAttribute('x1'); tr.y1 = +lane.getAttribute('y1');
        tr.x2 = +lane.getAttribute('x2'); tr.y2 = +lane.getAttribute('y2');
        tr.up = l.state === 'up';
        tr.dur = Math.min(3, Math.max(0.5, (l.rttMs || 50) / 120));
        tr.group = $(g.id + '-dots');
        const p = prevCounters && prevCounters[id];
        if (p && now > p.at) {
          const dt = (now - p.at) / 1000;
          const dm = Math.max(0, l.messages - p.messages), db = Math.max(0, l.bytes - p.bytes);
          // smooth: frames come at most 20/s, some with no change
          tr.rate = dt > 0 ? 0.6 * tr.rate + 0.4 * (dm / dt) : tr.rate;
          tr.bytesRate = dt > 0 ? 0.6 * tr.bytesRate + 0.4 * (db / dt) : tr.bytesRate;
        }
        if (!tr.up) { tr.rate = 0; tr.bytesRate = 0; }
        lane.style.strokeWidth = tr.up ? (2.5 + Math.min(4, Math.log10(1 + tr.bytesRate) / 1.3)).toFixed(1) : '';
        msgs += tr.rate;
      });
      $(g.id + '-traffic').textContent = msgs >= 0.5 ? Math.round(msgs) + ' msg/s' : '';
    });
    prevCounters = next;

    const q = st.replicated || { n: 0, w: 0, r: 0 };
    $('quorum-n').textContent = q.n;
    for (const k of ['w', 'r']) {
      const input = $('quorum-' + k);
      input.max = Math.max(1, q.n);
      if (document.activeElement !== input && !input.dataset.dirty) {
        input.value = q[k];
        $('quorum-' + k + '-value').textContent = q[k];
      }
    }
    updateQuorumIndicator();
    emit('state', st);
  }

  function updateQuorumIndicator() {
    if (!state) return;
    const n = state.replicated.n, w = +$('quorum-w').value, r = +$('quorum-r').value;
    const el = $('quorum-indicator');
    const strict = w + r > n;
    el.classList.toggle('strict', strict);
    el.textContent = strict
      ? 'W + R = ' + (w + r) + ' > N = ' + n + ': every read overlaps the latest acknowledged write, so reads are not stale — but a region cut off from enough replicas must refuse.'
      : 'W + R = ' + (w + r) + ' ≤ N = ' + n + ': fast and always available, but a read can miss the latest write and two regions can sell the same unit.';
    const applied = state.replicated.w === w && state.replicated.r === r;
    if (!applied) el.textContent += ' (not applied yet)';
  }

  // ---------- traffic dots
  let lastFrame = performance.now();
  function animate(now) {
    const dt = Math.min(0.1, (now - lastFrame) / 1000);
    lastFrame = now;
    for (const id in traffic) {
      const tr = traffic[id];
      if (!tr.group) continue;
      const want = tr.up && tr.rate > 0.3 ? Math.min(5, 1 + Math.floor(Math.log2(1 + tr.rate))) : 0;
      while (tr.dots.length < want) { const c = svg('circle', { r: '2.6' }); tr.group.appendChild(c); tr.dots.push(c); }
      while (tr.dots.length > want) tr.dots.pop().remove();
      if (!want) continue;
      tr.phase = (tr.phase + dt / tr.dur) % 1;
      tr.dots.forEach((c, i) => {
        const f = (tr.phase + i / want) % 1;
        c.setAttribute('cx', (tr.x1 + (tr.x2 - tr.x1) * f).toFixed(1));
        c.setAttribute('cy', (tr.y1 + (tr.y2 - tr.y1) * f).toFixed(1));
      });
    }
    requestAnimationFrame(animate);
  }
  if (!window.matchMedia('(prefers-reduced-motion: reduce)').matches) requestAnimationFrame(animate);

  // ---------- fragments
  function applyFragment(id, html) {
    const el = $(id);
    if (!el) return;
    const tpl = document.createElement('template');
    tpl.innerHTML = html;
    const node = tpl.content.firstElementChild;
    if (!node || node.id !== id) return;
    if (id === 'verdict' && node.dataset.sku && node.dataset.sku !== sku) return;
    const focused = document.activeElement && el.contains(document.activeElement) ? document.activeElement.id : null;
    el.replaceWith(node);
    if (focused && $(focused)) $(focused).focus();
    emit('fragment', { id, html });
  }
  async function refreshVerdict() {
    const res = await fetch('/ui/verdict?sku=' + encodeURIComponent(sku), { credentials: 'same-origin' });
    const f = await res.json().catch(() => null);
    if (f && f.type === 'fragment') applyFragment(f.id, f.html);
    else if (f && f.error) toast(f.error, true);
  }

  // ---------- space-time diagram
  const LANE_H = Math.max(56, 8 + 24 * STORES.length), LEFT = 0, TOP = 26, PX_PER_S = 220, GAP_MAX_S = 2, GAP_PX = 46;
  let drawQueued = false;
  function queueDraw() {
    if (drawQueued) return;
    drawQueued = true;
    requestAnimationFrame(() => { drawQueued = false; drawTimeline(); });
  }
  function timeScale(times) {
    // piecewise: real time at PX_PER_S, idle gaps longer than GAP_MAX_S squeezed to GAP_PX
    const ts = Array.from(new Set(times)).sort((a, b) => a - b);
    const pts = [];
    let x = LEFT + 10;
    const gaps = [];
    for (let i = 0; i < ts.length; i++) {
      if (i > 0) {
        const d = (ts[i] - ts[i - 1]) / 1000;
        if (d > GAP_MAX_S) { gaps.push({ x: x + GAP_PX / 2, s: d }); x += GAP_PX; } else x += d * PX_PER_S;
      }
      pts.push([ts[i], x]);
    }
    const map = (t) => {
      if (!pts.length) return LEFT + 10;
      let lo = 0, hi = pts.length - 1;
      if (t <= pts[0][0]) return pts[0][1];
      if (t >= pts[hi][0]) return pts[hi][1] + (t - pts[hi][0]) / 1000 * PX_PER_S;
      while (hi - lo > 1) { const m = (lo + hi) >> 1; if (pts[m][0] <= t) lo = m; else hi = m; }
      const [t0, x0] = pts[lo], [t1, x1] = pts[hi];
      return x0 + (x1 - x0) * (t - t0) / (t1 - t0 || 1);
    };
    return { map, end: x, gaps, start: pts.length ? pts[0][0] : 0 };
  }
  function drawTimeline() {
    const el = $('timeline');
    if (!el) return;
    const regions = regionNames();
    while (el.firstChild) el.firstChild.remove();
    const times = [];
    for (const o of ops) { times.push(o.callMs, o.returnMs); }
    for (const f of faults) times.push(f.atMs);
    const sc = timeScale(times);
    const scroller = $('timeline-scroll');
    const width = Math.max(scroller.clientWidth - 2, sc.end + 160);
    const height = TOP + regions.length * LANE_H + 10;
    el.setAttribute('width', width);
    el.setAttribute('height', height);
    el.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    const laneY = {};
    const lanes = $('timeline-lanes');
    while (lanes.firstChild) lanes.firstChild.remove();
    lanes.setAttribute('width', 120);
    lanes.setAttribute('height', height);
    regions.forEach((r, i) => {
      const y = TOP + i * LANE_H;
      laneY[r] = y;
      el.appendChild(svg('rect', { class: 'lane-bg' + (i % 2 ? ' alt' : ''), x: 0, y, width, height: LANE_H }));
      lanes.appendChild(svg('rect', { class: 'lane-bg' + (i % 2 ? ' alt' : ''), x: 0, y, width: 120, height: LANE_H }));
      lanes.appendChild(svg('text', { class: 'lane-name', x: 8, y: y + 20 }, r));
      lanes.appendChild(svg('text', { class: 'lane-sub', x: 8, y: y + 34 }, 'CP row · AP row'));
    });
    // fault bands: network faults until the next heal, crashes until restart
    let netOpen = null;
    const crashOpen = {};
    const bands = [];
    const endT = times.length ? Math.max(...times) : 0;
    for (const f of faults) {
      if (f.kind === 'cut' || f.kind === 'partition') { if (netOpen === null) netOpen = f.atMs; }
      if ((f.kind === 'heal' || f.kind === 'reset') && netOpen !== null) { bands.push({ from: netOpen, to: f.atMs, lanes: regions }); netOpen = null; }
      if (f.kind === 'crash') for (const r of f.regions || []) crashOpen[r] = f.atMs;
      if (f.kind === 'restart' || f.kind === 'reset') for (const r of (f.kind === 'reset' ? Object.keys(crashOpen) : f.regions || [])) {
        if (crashOpen[r] !== undefined) { bands.push({ from: crashOpen[r], to: f.atMs, lanes: [r] }); delete crashOpen[r]; }
      }
    }
    if (netOpen !== null) bands.push({ from: netOpen, to: endT, lanes: regions, open: true });
    for (const r in crashOpen) bands.push({ from: crashOpen[r], to: endT, lanes: [r], open: true });
    for (const b of bands) {
      const x1 = sc.map(b.from), x2 = b.open ? width : Math.max(sc.map(b.to), x1 + 2);
      for (const r of b.lanes) if (laneY[r] !== undefined) el.appendChild(svg('rect', { class: 'fault-band', x: x1, y: laneY[r], width: x2 - x1, height: LANE_H }));
    }
    for (const f of faults) {
      const x = sc.map(f.atMs);
      el.appendChild(svg('line', { class: 'fault-line', x1: x, y1: TOP - 4, x2: x, y2: height - 6 }));
      const label = svg('text', { class: 'fault-label', x: x + 3, y: 12 }, '▥ ' + f.kind);
      label.appendChild(svg('title', {}, f.kind + ': ' + (f.detail || '') + ' at ' + new Date(f.atMs).toLocaleTimeString()));
      el.appendChild(label);
    }
    for (const g of sc.gaps) el.appendChild(svg('text', { class: 'tick-label', x: g.x - 12, y: height - 2 }, '⋯ ' + Math.round(g.s) + ' s'));
    if (sc.start) el.appendChild(svg('text', { class: 'tick-label', x: LEFT + 10, y: height - 2 }, new Date(sc.start).toLocaleTimeString()));
    const labelEnd = {}; // lane row -> x where the last label ends
    for (const o of ops) {
      const y = laneY[o.region];
      if (y === undefined) continue;
      const x1 = sc.map(o.callMs), x2 = Math.max(sc.map(o.returnMs), x1 + 4);
      const g = svg('g', { class: 'bar o-' + o.outcome, 'data-op': o.id });
      const row = Math.max(0, STORES.indexOf(o.store));
      g.appendChild(svg('rect', { x: x1, y: y + 6 + row * 24, width: x2 - x1, height: 12 }));
      const what = o.op === 'buy' ? 'buy ' + (o.qty || '') : o.op === 'read' ? 'read=' + o.quantity : 'stock ' + (o.qty || o.quantity);
      // a full label where there is room; just the outcome's symbol where bars crowd
      const key = o.region + row;
      let text = storeShort(o.store) + ' ' + what + ' ' + (icons[o.outcome] || '') + ' ' + (words[o.outcome] || o.outcome);
      if ((labelEnd[key] || 0) > x1) text = icons[o.outcome] || '•';
      const lx = Math.max(x1, labelEnd[key] || 0);
      labelEnd[key] = lx + text.length * 6.2 + 6;
      g.appendChild(svg('text', { x: lx, y: y + 29 + row * 24 - 1 }, text));
      g.appendChild(svg('title', {}, o.region + ', ' + o.store + ': ' + o.op + ' → ' + (words[o.outcome] || o.outcome) + ', ' + Math.round(o.returnMs - o.callMs) + ' ms'));
      el.appendChild(g);
    }
    if (!ops.length && !faults.length) el.appendChild(svg('text', { class: 'empty', x: LEFT + 10, y: TOP + 20 }, 'Nothing yet for ' + sku + ': buy, read or cut a link and it appears here.'));
    if ($('timeline-follow').checked) scroller.scrollLeft = scroller.scrollWidth;
  }
  function normOp(o, outcome) {
    return {
      id: o.id, region: o.region, store: o.store, sku: o.sku, op: o.op, qty: o.qty, quantity: o.quantity,
      outcome: o.outcome || (outcome && outcome.outcome),
      callMs: Date.parse(o.call), returnMs: Date.parse(o.return),
    };
  }
  function normFault(f) { return { id: f.id, kind: f.kind, regions: f.regions, detail: f.detail, atMs: Date.parse(f.at) }; }
  async function loadHistory() {
    const res = await fetch('/api/history?sku=' + encodeURIComponent(sku), { credentials: 'same-origin' });
    const h = await res.json().catch(() => null);
    if (!h || h.error) { if (h && h.error) toast(h.error, true); return; }
    ops = (h.operations || []).map((o) => normOp(o)).slice(-500);
    for (const o of ops) {
      const el = $('outcome-' + o.region);
      if (!el) continue;
      el.className = 'outcome o-' + o.outcome;
      const what = o.op === 'buy' ? 'buy ' + (o.qty || '') : o.op === 'read' ? 'read (' + o.quantity + ')' : 'stock ' + (o.qty || o.quantity);
      el.textContent = 'Last here: ' + what + ' on ' + o.store + ' → ' + (icons[o.outcome] || '') + ' ' + (words[o.outcome] || o.outcome) + ', ' + Math.round(o.returnMs - o.callMs) + ' ms.';
    }
    faults = (h.faults || []).map(normFault).slice(-200);
    queueDraw();
  }
  function addSR(text) {
    const list = $('timeline-list');
    if (!list) return;
    const li = document.createElement('li');
    li.textContent = text;
    list.appendChild(li);
    while (list.children.length > 100) list.firstChild.remove();
  }

  // ---------- stream
  let ws = null, backoff = 500;
  function connect() {
    const conn = $('conn-status');
    ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
    ws.onopen = () => { backoff = 500; conn.textContent = 'live'; conn.className = 'badge conn live'; };
    ws.onclose = () => {
      conn.textContent = 'reconnecting…'; conn.className = 'badge conn lost';
      setTimeout(connect, backoff);
      backoff = Math.min(8000, backoff * 2);
    };
    ws.onmessage = (ev) => {
      let f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      switch (f.type) {
        case 'state': if (f.state) applyState(f.state); break;
        case 'operation': {
          if (f.outcome) showOutcome(f.outcome);
          const o = f.operation;
          if (o && o.sku === sku && !ops.some((x) => x.id === o.id)) {
            ops.push(normOp(o, f.outcome));
            if (ops.length > 500) ops.shift();
            queueDraw();
          }
          if (f.outcome) addSR(f.outcome.region + ': ' + outcomeSentence(f.outcome));
          break;
        }
        case 'fault':
          if (f.fault && !faults.some((x) => x.id === f.fault.id)) { faults.push(normFault(f.fault)); queueDraw(); addSR('Fault: ' + f.fault.kind + ' ' + (f.fault.detail || '')); }
          break;
        case 'reset':
          ops = []; faults = [];
          document.querySelectorAll('.outcome').forEach((el) => { el.className = 'outcome'; el.textContent = 'No purchase yet.'; });
          queueDraw();
          refreshVerdict();
          break;
        case 'fragment': applyFragment(f.id, f.html); break;
      }
      emit(f.type, f);
    };
  }

  // ---------- presenter actions
  function currentStore() { return store; }
  function qtyOf(id) { const v = $(id).value.trim(); return v === '' ? null : Number(v); }
  async function buy(region, btn) {
    const r = await busy(btn, () => api('POST', '/api/stores/' + currentStore() + '/skus/' + encodeURIComponent(sku) + '/buy', { region, qty: qtyOf('buy-qty-' + region) }));
    if (r.data && r.data.outcome) showOutcome(r.data);
  }
  async function read(region, btn) {
    const c = $('read-consistency-' + region).value;
    const r = await busy(btn, () => api('GET', '/api/stores/' + currentStore() + '/skus/' + encodeURIComponent(sku) + '?region=' + encodeURIComponent(region) + '&consistency=' + c));
    if (r.data && r.data.outcome) showOutcome(r.data);
  }
  async function stock(region, btn) {
    const r = await busy(btn, () => api('PUT', '/api/stores/' + currentStore() + '/skus/' + encodeURIComponent(sku), { region, quantity: qtyOf('stock-qty-' + region) }));
    if (r.data && r.data.outcome) showOutcome(r.data);
  }
  function stockRegion() {
    if (!state) return null;
    const leader = state.regions.find((r) => r.up && r.consensus.role === 'leader');
    const up = state.regions.find((r) => r.up);
    return (leader || up || state.regions[0]).name;
  }
  async function stockBoth(btn) {
    const region = stockRegion();
    const quantity = qtyOf('stock-both-qty');
    await busy(btn, async () => {
      for (const s of STORES) {
        const r = await api('PUT', '/api/stores/' + s + '/skus/' + encodeURIComponent(sku), { region, quantity });
        if (r.data && r.data.outcome) showOutcome(r.data);
        if (!r.ok && r.status !== 503 && r.status !== 409) return;
      }
      if (quantity !== null) toast('Stocked ' + quantity + ' × ' + sku + ' in every store (written from ' + region + ').');
    });
  }
  async function isolate(region) {
    const others = regionNames().filter((n) => n !== region);
    if (!others.length) return;
    const r = await api('POST', '/api/network/partition', { groups: [[region], others] });
    if (r.ok) toast(region + ' is cut off from every other region.');
  }
  async function bridge(via) {
    const others = regionNames().filter((n) => n !== via);
    const half = Math.floor(others.length / 2);
    const left = others.slice(0, half), right = others.slice(half);
    const r = await api('POST', '/api/network/bridge', { via: via });
    if (r.ok) toast('Bridge: ' + joinAnd(left) + ' and ' + joinAnd(right) + ' can only reach each other through ' + via + '.');
  }
  async function heal() { const r = await api('POST', '/api/network/heal', {}); if (r.ok) toast('Every link is up.'); }
  async function reset(btn) {
    const r = await busy(btn, () => api('POST', '/api/reset', {}));
    if (r.ok) toast('The lab is fresh: stores empty, links up, history cleared.');
  }
  async function setLink(from, to, up, oneWay) {
    await api('POST', '/api/network/link', { from, to, state: up ? 'up' : 'cut', oneWay });
  }
  async function applyQuorum(w, r) {
    const res = await api('PUT', '/api/stores/replicated/config', { w, r });
    if (res.ok) { delete $('quorum-w').dataset.dirty; delete $('quorum-r').dataset.dirty; toast('Replicated store: W = ' + w + ', R = ' + r + '.'); }
  }
  function viewerOnly() { toast('You are watching: only the presenter can change the lab.'); }

  // ---------- popovers and overlay
  let menuFor = null, menuReturn = null;
  function openMenu(id, anchor, title) {
    closeMenus();
    const m = $(id);
    $(id + '-title').textContent = title;
    m.hidden = false;
    const r = anchor.getBoundingClientRect();
    const mw = m.offsetWidth, mh = m.offsetHeight;
    let left = Math.min(window.innerWidth - mw - 8, Math.max(8, r.left + r.width / 2 - mw / 2));
    let top = r.bottom + 6;
    if (top + mh > window.innerHeight - 8) top = Math.max(8, r.top - mh - 6);
    m.style.left = left + 'px';
    m.style.top = top + 'px';
    menuReturn = anchor;
    const first = m.querySelector('button');
    if (first) first.focus();
  }
  function closeMenus(restore) {
    for (const id of ['link-menu', 'region-menu']) $(id).hidden = true;
    if (restore && menuReturn) menuReturn.focus();
    menuFor = null;
  }
  function openLinkMenu(g) {
    const a = g.dataset.a, b = g.dataset.b;
    openMenu('link-menu', g, 'Link ' + a + ' ⇄ ' + b);
    menuFor = { a, b };
    $('link-menu-cut-fwd').textContent = 'Cut ' + a + ' → ' + b + ' only';
    $('link-menu-cut-rev').textContent = 'Cut ' + b + ' → ' + a + ' only';
    $('link-menu-rtt').value = g.dataset.rtt || '';
  }
  function openRegionMenu(g) {
    const name = g.dataset.region;
    openMenu('region-menu', g, 'Region ' + name);
    menuFor = { region: name };
    const r = state && state.regions.find((x) => x.name === name);
    $('region-menu-crash').disabled = !!r && !r.up;
    $('region-menu-restart').disabled = !!r && r.up;
    $('region-menu-lead').disabled = !!r && (!r.up || r.consensus.role === 'leader');
  }
  let helpReturn = null;
  function toggleHelp(show) {
    const h = $('help');
    const open = show === undefined ? h.hidden : show;
    if (open) { helpReturn = document.activeElement; h.hidden = false; $('help-close').focus(); } else { h.hidden = true; if (helpReturn) helpReturn.focus(); }
  }
  function setPresent(on) {
    body.classList.toggle('present', on);
    $('present-toggle').setAttribute('aria-pressed', String(on));
    try { localStorage.setItem('caplab.present', on ? '1' : '0'); } catch (e) { /* private mode */ }
    queueDraw();
  }
  function setStore(s) {
    store = STORES.includes(s) ? s : 'consensus';
    for (const x of STORES) body.classList.toggle('store-' + x, store === x);
    $('store-' + store).checked = true;
    document.querySelectorAll('[id^="read-consistency-"]').forEach((sel) => { sel.disabled = !presenter || store === 'replicated'; });
    try { localStorage.setItem('caplab.store', store); } catch (e) { /* private mode */ }
  }

  // ---------- wiring
  document.addEventListener('click', (e) => {
    const t = e.target.closest('button, .link, .region, a');
    if (!t) { if (!e.target.closest('.popover')) closeMenus(); return; }
    if (t.id === 'help-open') return toggleHelp(true);
    if (t.id === 'help-close') return toggleHelp(false);
    if (t.id === 'present-toggle') return setPresent(!body.classList.contains('present'));
    if (t.id === 'verdict-refresh') return refreshVerdict();
    if (t.id === 'link-menu-close' || t.id === 'region-menu-close') return closeMenus(true);
    if (t.classList && t.classList.contains('link')) {
      if (!presenter) return viewerOnly();
      if (e.shiftKey || e.altKey) return openLinkMenu(t);
      return setLink(t.dataset.a, t.dataset.b, t.dataset.state !== 'up', false);
    }
    if (t.classList && t.classList.contains('region')) {
      if (!presenter) return viewerOnly();
      return openRegionMenu(t);
    }
    if (!presenter || t.disabled) return;
    const region = t.dataset.region;
    switch (t.dataset.action) {
      case 'buy': return buy(region, t);
      case 'read': return read(region, t);
      case 'stock': return stock(region, t);
      case 'isolate': return isolate(region);
      case 'bridge': return bridge($('bridge-region').value);
      case 'heal': return heal();
    }
    const m = menuFor;
    switch (t.id) {
      case 'reset': return reset(t);
      case 'stock-both': return stockBoth(t);
      case 'quorum-apply': return applyQuorum(+$('quorum-w').value, +$('quorum-r').value);
      case 'quorum-preset-global': $('quorum-w').value = 1; $('quorum-r').value = 1; return applyQuorum(1, 1);
      case 'quorum-preset-strict': { const k = Math.floor(state.replicated.n / 2) + 1; $('quorum-w').value = k; $('quorum-r').value = k; return applyQuorum(k, k); }
      case 'link-menu-cut-both': closeMenus(true); return setLink(m.a, m.b, false, false);
      case 'link-menu-heal-both': closeMenus(true); return setLink(m.a, m.b, true, false);
      case 'link-menu-cut-fwd': closeMenus(true); return setLink(m.a, m.b, false, true);
      case 'link-menu-cut-rev': closeMenus(true); return setLink(m.b, m.a, false, true);
      case 'link-menu-rtt-apply': {
        const v = $('link-menu-rtt').value.trim();
        closeMenus(true);
        return api('POST', '/api/network/latency', { from: m.a, to: m.b, rttMs: v === '' ? null : Number(v), oneWay: false });
      }
      case 'region-menu-crash': closeMenus(true); return api('POST', '/api/regions/' + m.region + '/crash', {});
      case 'region-menu-restart': closeMenus(true); return api('POST', '/api/regions/' + m.region + '/restart', {});
      case 'region-menu-lead':
        closeMenus(true);
        toast('Moving leadership to ' + m.region + '…');
        return api('POST', '/api/regions/' + m.region + '/lead', {}).then((r) => { if (r.ok) toast(m.region + ' leads the consensus group.'); });
      case 'region-menu-isolate': closeMenus(true); return isolate(m.region);
    }
  });
  document.addEventListener('contextmenu', (e) => {
    const g = e.target.closest('.link');
    if (g && presenter) { e.preventDefault(); openLinkMenu(g); }
  });
  document.addEventListener('keydown', (e) => {
    const t = e.target;
    if (e.key === 'Escape') { if (!$('help').hidden) return toggleHelp(false); return closeMenus(true); }
    if (t.classList && (t.classList.contains('link') || t.classList.contains('region')) && (e.key === 'Enter' || e.key === ' ')) {
      e.preventDefault();
      if (!presenter) return viewerOnly();
      if (t.classList.contains('region')) return openRegionMenu(t);
      if (e.shiftKey) return openLinkMenu(t);
      return setLink(t.dataset.a, t.dataset.b, t.dataset.state !== 'up', false);
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (t.closest && t.closest('input, select, textarea, [contenteditable]')) return;
    if (e.key === '?') { e.preventDefault(); return toggleHelp(); }
    if (e.key === 'p') return setPresent(!body.classList.contains('present'));
    if (e.key === 'n') { emit('lesson-next', {}); return; }
    if (!presenter) return;
    if (/^[1-7]$/.test(e.key)) { const name = regionNames()[+e.key - 1]; if (name) isolate(name); return; }
    if (e.key === 'h') return heal();
    if (e.key === 'r') return reset($('reset'));
  });
  document.querySelectorAll('input[name="store"]').forEach((r) => r.addEventListener('change', () => setStore(r.value)));
  for (const k of ['w', 'r']) {
    $('quorum-' + k).addEventListener('input', (e) => {
      e.target.dataset.dirty = '1';
      $('quorum-' + k + '-value').textContent = e.target.value;
      updateQuorumIndicator();
    });
  }
  $('sku').addEventListener('change', (e) => {
    const v = e.target.value.trim();
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(v)) { toast('A SKU is 1 to 64 letters, digits, ".", "_" or "-", e.g. IPHONE-15-PRO.', true); e.target.value = sku; return; }
    sku = v;
    loadHistory();
    refreshVerdict();
  });
  window.addEventListener('resize', queueDraw);

  // ---------- lesson panel: every page follows the shared lesson session
  // (lesson and poll frames); the presenter drives it through the API.
  if (body.dataset.lessons === 'true') {
    const canRun = body.dataset.canRun === 'true' && presenter;
    const statusIcon = { done: '●', passed: '✓', failed: '✗', error: '⚠' };
    const statusWord = { done: 'done', passed: 'passed', failed: 'failed', error: 'error' };
    let cur = null;     // the open lesson (lessonView), null when none
    let poll = null;    // the open question (pollView), null when none
    let myVote = '';    // this browser's vote on the open question
    let pollKey = '';   // which question myVote belongs to
    let framed = false; // a lesson frame has arrived (newer than any snapshot)
    const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
    const keyOf = (p) => p ? p.lesson + '/' + p.step + '/' + p.index : '';

    function renderLesson() {
      const sel = $('lesson-select');
      if (document.activeElement !== sel) sel.value = cur ? cur.id : '';
      $('lesson-progress').textContent = cur ? 'Step ' + (cur.step + 1) + ' of ' + cur.steps : '';
      const list = $('lesson-steps');
      list.textContent = '';
      const box = $('lesson-step');
      const cmds = $('lesson-commands');
      cmds.textContent = '';
      const status = $('lesson-status');
      if (!cur) {
        box.textContent = '';
        box.appendChild(el('p', '', presenter ? 'Pick a lesson: everyone watching follows you step by step.' : 'The presenter has not opened a lesson; play along on the map.'));
        status.textContent = '';
        for (const id of ['lesson-prev', 'lesson-next', 'lesson-run']) if ($(id)) $(id).disabled = true;
        return;
      }
      cur.stepTitles.forEach((title, i) => {
        const li = el('li', i === cur.step ? 'current' : '', title);
        if (i === cur.step) li.setAttribute('aria-current', 'step');
        list.appendChild(li);
      });
      box.textContent = '';
      box.appendChild(el('h3', '', 'Step ' + (cur.step + 1) + ' of ' + cur.steps + ': ' + cur.stepTitle));
      const prose = el('div', 'prose');
      prose.innerHTML = cur.html || ''; // trusted: rendered by the lessons provider (no raw HTML)
      box.appendChild(prose);
      cur.commands.forEach((c, i) => {
        const r = cur.results[i];
        const st = r ? r.status : (cur.running && i === cur.results.length ? 'running' : 'pending');
        const li = el('li', 'cmd s-' + st);
        li.id = 'lesson-command-' + i;
        li.dataset.testid = 'lesson-command-' + i;
        li.dataset.status = st;
        li.appendChild(el('span', 'icon', r ? statusIcon[r.status] || '•' : st === 'running' ? '…' : '○')).setAttribute('aria-hidden', 'true');
        li.appendChild(el('span', 'sr-only', (r ? statusWord[r.status] || r.status : st === 'running' ? 'running' : 'not run yet') + ': '));
        li.appendChild(el('code', '', c));
        if (r && r.text) li.appendChild(el('span', 'what', r.text));
        cmds.appendChild(li);
      });
      if (cur.running) status.textContent = 'Running step ' + (cur.step + 1) + '…';
      else if (cur.ran) status.textContent = (cur.failed ? '✗ ' : '✓ ') + (cur.report || 'Done.');
      else if (poll && !poll.revealed) status.textContent = presenter ? 'The audience is voting; reveal the answer or run the step.' : 'Vote, then watch the lab.';
      else status.textContent = presenter && canRun ? 'Run the step when you are ready (key n).' : '';
      status.className = 'lesson-status' + (cur.ran ? (cur.failed ? ' bad' : ' good') : '');
      if ($('lesson-prev')) $('lesson-prev').disabled = cur.running || cur.step === 0;
      if ($('lesson-next')) $('lesson-next').disabled = cur.running || cur.step >= cur.steps - 1;
      if ($('lesson-run')) $('lesson-run').disabled = cur.running;
    }

    function renderPoll() {
      const card = $('poll');
      const k = keyOf(poll);
      if (k !== pollKey) { pollKey = k; myVote = ''; }
      if (!poll) { card.hidden = true; return; }
      card.hidden = false;
      $('poll-kicker').textContent = (poll.count > 1 ? 'Question ' + (poll.index + 1) + ' of ' + poll.count + ' · ' : '') +
        (poll.revealed ? 'The answer is out' : 'Predict before the lab shows it');
      $('poll-question').textContent = poll.question;
      const opts = $('poll-options');
      const focused = document.activeElement && opts.contains(document.activeElement) ? document.activeElement.id : null;
      opts.textContent = '';
      poll.options.forEach((o, i) => {
        const b = el('button', 'btn poll-option');
        b.type = 'button';
        b.id = 'poll-option-' + i;
        b.dataset.testid = 'poll-option-' + i;
        b.dataset.option = o;
        const right = poll.revealed && o === poll.answer;
        b.textContent = (right ? '✓ ' : o === myVote ? '● ' : '') + o;
        b.setAttribute('aria-pressed', String(o === myVote));
        b.classList.toggle('chosen', o === myVote);
        b.classList.toggle('correct', right);
        b.disabled = poll.revealed;
        opts.appendChild(b);
      });
      if (focused && $(focused)) $(focused).focus();
      const tally = $('poll-tally');
      tally.textContent = '';
      if (poll.tally) {
        const ul = el('ul', 'tally');
        poll.options.forEach((o, i) => {
          const n = poll.tally[i] || 0, pct = poll.votes ? Math.round(100 * n / poll.votes) : 0;
          const li = el('li', poll.revealed && o === poll.answer ? 'correct' : '');
          li.appendChild(el('span', 'opt', (poll.revealed && o === poll.answer ? '✓ ' : '') + o));
          const bar = el('span', 'bar');
          bar.style.width = pct + '%';
          bar.setAttribute('aria-hidden', 'true');
          li.appendChild(bar);
          li.appendChild(el('span', 'n', n + (n === 1 ? ' vote' : ' votes') + ' (' + pct + '%)'));
          ul.appendChild(li);
        });
        tally.appendChild(ul);
      }
      tally.appendChild(el('p', 'hint', poll.votes + (poll.votes === 1 ? ' vote' : ' votes') + (poll.tally ? '' : ' so far — the tally shows when the presenter reveals the answer.')));
      const ans = $('poll-answer');
      ans.hidden = !poll.revealed;
      ans.textContent = '';
      if (poll.revealed) {
        let s = 'Answer: ' + poll.answer + '.';
        if (myVote) s += myVote === poll.answer ? ' ✓ You predicted it.' : ' ✗ You said ' + myVote + '.';
        ans.textContent = s;
      }
      if ($('poll-reveal')) $('poll-reveal').hidden = poll.revealed;
      if ($('poll-next')) $('poll-next').hidden = !(poll.revealed && poll.index + 1 < poll.count);
      $('poll-status').textContent = poll.revealed ? '' : myVote ? 'Your vote: ' + myVote + '. You can change it until the reveal.' : 'Tap an option to vote.';
    }

    const setLesson = (id, step) => api('PUT', '/api/lesson', { lesson: id, step });
    async function runStep() {
      if (!cur || !canRun || cur.running) return;
      await busy($('lesson-run'), () => api('POST', '/api/lessons/' + encodeURIComponent(cur.id) + '/steps/' + cur.step + '/run', {}));
    }
    // n: one beat forward. Run this step if it has not run; otherwise go to
    // the next step and run it, unless it asks the audience first.
    async function advance() {
      if (!presenter || !cur || cur.running) return;
      if (!cur.ran && canRun) return runStep();
      if (cur.step >= cur.steps - 1) { toast('That was the last step of ' + cur.title + '.'); return; }
      const r = await setLesson(cur.id, cur.step + 1);
      if (r.ok && r.data.lesson) {
        cur = r.data.lesson; renderLesson();
        if (!cur.polls && canRun) runStep();
      }
    }
    async function vote(option) {
      if (!poll || poll.revealed) return;
      const r = await api('POST', '/api/poll/vote', { option });
      if (r.ok) { pollKey = keyOf(poll); myVote = option; renderPoll(); }
    }

    $('lesson-select').addEventListener('change', (e) => { if (presenter) setLesson(e.target.value, 0); });
    document.addEventListener('click', (e) => {
      const t = e.target.closest('button');
      if (!t || t.disabled) return;
      if (t.classList.contains('poll-option')) return vote(t.dataset.option);
      if (!presenter || !cur) return;
      switch (t.id) {
        case 'lesson-prev': return setLesson(cur.id, cur.step - 1);
        case 'lesson-next': return setLesson(cur.id, cur.step + 1);
        case 'lesson-run': return runStep();
        case 'poll-reveal': return api('POST', '/api/poll/reveal', {});
        case 'poll-next': return api('POST', '/api/poll/next', {});
      }
    });
    (listeners['lesson-next'] = listeners['lesson-next'] || []).push(advance);
    (listeners.lesson = listeners.lesson || []).push((f) => { framed = true; cur = f.lesson || null; renderLesson(); });
    (listeners.poll = listeners.poll || []).push((f) => { poll = f.poll || null; renderPoll(); renderLesson(); });
    // This browser's vote survives a reload: the server knows it by cookie.
    api('GET', '/api/lesson').then((r) => {
      if (!r.ok || !r.data) return;
      if (!framed) { cur = r.data.lesson || null; poll = r.data.poll || null; }
      if (r.data.poll && keyOf(r.data.poll) === keyOf(poll)) { pollKey = keyOf(poll); myVote = r.data.vote || ''; }
      renderPoll(); renderLesson();
    });
  }

  window.caplab = {
    on(type, fn) { (listeners[type] = listeners[type] || []).push(fn); },
    state() { return state; },
    api,
  };

  // ---------- start
  let saved = null;
  try { saved = localStorage.getItem('caplab.store'); if (localStorage.getItem('caplab.present') === '1') setPresent(true); } catch (e) { /* private mode */ }
  setStore(saved || 'consensus');
  if (new URLSearchParams(location.search).get('present') === '1') setPresent(true);
  connect();
  loadHistory();
  refreshVerdict();
})();
