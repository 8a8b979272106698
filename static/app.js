// caplab page client. Our own small script, no dependencies, no build step.
// It keeps the page live from the /ws stream (state, operation, fault,
// reset and fragment frames), animates the map, draws the space-time
// diagram, and sends the presenter's actions to the JSON API (API.md).
// window.caplab is the extension point for the lesson panel (lessons.js)
// and other panels: on(type, fn) subscribes to frames, state() returns the
// latest State, api() calls the API; toast, busy, selectTab and presenter
// are shared too.
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const body = document.body;
  const presenter = body.dataset.role === 'presenter';
  const SVGNS = 'http://www.w3.org/2000/svg';
  const icons = { ok: '✓', sold_out: '∅', unavailable: '⊘', fail_fast: '⚡', conflict: '↺', overloaded: '◷' };
  const words = { ok: 'ok', sold_out: 'sold out', unavailable: 'unavailable', fail_fast: 'fail fast', conflict: 'conflict', overloaded: 'overloaded' };
  // what a buy's outcome means for the shopper, shown in the shop
  const buyWords = { ok: 'Sold', sold_out: 'Sold out', unavailable: 'Refused', fail_fast: 'Refused at once', conflict: 'Gave up', overloaded: 'Too busy — try again' };
  const stores = (body.dataset.stores || 'consensus,replicated').split(',');
  const kindWord = (k) => words[k] || String(k || 'unknown').replace(/_/g, ' ');
  const kindIcon = (k) => icons[k] || '•';
  const knownKind = (k) => Object.prototype.hasOwnProperty.call(icons, k);
  const listeners = {};

  let state = null;
  // A moment shown again (replay.js): while past is set, the map, the
  // shops and the score show it; live frames keep state and the history
  // current underneath, and goLive draws them again.
  let past = null; // {atMs} while a moment is shown
  let sku = body.dataset.sku || 'IPHONE-15-PRO';
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
  function storeShort(s) { return s === 'consensus' ? 'CP' : s === 'replicated' ? 'AP' : String(s).toUpperCase(); }
  function storeTitle(s) { return s ? s[0].toUpperCase() + s.slice(1) : s; }
  function secs(ms) { return ms >= 1000 ? (ms / 1000).toFixed(1) + ' s' : Math.round(ms) + ' ms'; }

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
  // The words of an outcome come from the server (lab.Say), with live
  // frames and with the history alike, so a late viewer reads what a live
  // one read. Without them (an old server), the kind's own word.
  function wordsOf(o, said) {
    if (said && said.tag) return said;
    const tag = o.op === 'read' ? 'Read ' + kindWord(o.outcome) : (buyWords[o.outcome] || kindWord(o.outcome));
    return { tag, why: '', text: tag + '.' };
  }
  // stepOf names the lesson step an operation belongs to ('' when none):
  // lessons.js tells which steps ran when.
  let stepOf = () => '';
  function showOutcome(o, said) {
    if (o.op === 'stock') {
      if (o.outcome !== 'ok') toast('Stocking ' + o.sku + ' on ' + o.store + ': ' + kindWord(o.outcome) + '. ' + (o.message || ''), true);
      return;
    }
    const el = $('outcome-' + o.store + '-' + o.region);
    if (!el) return;
    const w = wordsOf(o, said);
    const kind = knownKind(o.outcome) ? o.outcome : 'other';
    el.className = 'outcome o-' + kind;
    el.dataset.outcome = o.outcome;
    el.dataset.sku = o.sku || '';
    if (o.opId) el.dataset.opId = String(o.opId); else delete el.dataset.opId;
    if (!o.fromHistory) el.dataset.shownAt = String(performance.now());
    el.textContent = '';
    const head = document.createElement('span');
    head.className = 'o-head';
    const tag = document.createElement('span');
    tag.className = 'tag';
    tag.textContent = kindIcon(o.outcome) + ' ' + w.tag;
    head.appendChild(tag);
    head.appendChild(document.createTextNode(' · ' + (w.took || secs(o.latencyMs || 0))));
    // which product (and lesson step) this answer belongs to
    const ctx = document.createElement('span');
    ctx.className = 'o-ctx';
    // named in a lesson (story mode), or when it is not the page's product
    const step = stepOf(o.callMs);
    const named = o.sku && (body.classList.contains('lesson-open') || o.sku !== sku) ? o.sku : '';
    ctx.textContent = [named, step].filter(Boolean).join(' · ');
    head.appendChild(ctx);
    el.appendChild(head);
    const why = document.createElement('span');
    why.className = 'o-why';
    why.textContent = w.why;
    el.appendChild(why);
    const full = document.createElement('span');
    full.className = 'sr-only';
    full.textContent = ' ' + storeTitle(o.store) + ', ' + (o.sku || '') + ': ' + w.text;
    el.appendChild(full);
    el.title = (o.sku ? o.sku + (step ? ', ' + step : '') + ': ' : '') + w.text;
    el.classList.remove('fresh'); void el.offsetWidth; el.classList.add('fresh');
  }
  // clearOutcomes empties every shop's outcome but those keep(el) says are
  // newer than what clears them: on a busy machine the answer to a buy can
  // overtake a reset's frame, or the page's first history.
  function clearOutcomes(keep) {
    document.querySelectorAll('.outcome').forEach((el) => {
      if (keep && keep(el)) return;
      el.className = 'outcome'; el.title = '';
      delete el.dataset.outcome; delete el.dataset.opId; delete el.dataset.shownAt; delete el.dataset.sku;
      el.innerHTML = '<span class="o-none">no buy yet</span>';
    });
  }

  // ---------- score: per store, for the product; stock writes apart
  function drawScore() {
    for (const st of stores) {
      // the checker's window: since the last stock of the product
      let sold = 0, refused = 0, soldOut = 0, stocked = null;
      for (const o of ops) {
        if (o.store !== st || (past && o.returnMs > past.atMs)) continue;
        if (o.op === 'stock' && o.outcome === 'ok') { stocked = o.qty || o.quantity || 0; sold = refused = soldOut = 0; continue; }
        if (o.op !== 'buy') continue;
        if (o.outcome === 'ok') sold += o.qty || 1;
        else if (o.outcome === 'sold_out') soldOut++;
        else refused++;
      }
      const oversold = stocked === null ? 0 : Math.max(0, sold - stocked);
      const set = (k, v) => { const e = $('score-' + st + '-' + k); if (e) { e.textContent = v; e.parentElement.classList.toggle('bad', k === 'oversold' && v > 0); } };
      set('sold', sold); set('refused', refused); set('soldout', soldOut); set('oversold', oversold);
    }
    const s = $('score-sku');
    if (s) s.textContent = sku;
  }

  // ---------- state -> map, shops, quorum
  function applyState(st) {
    const names = st.regions.map((r) => r.name).join(',');
    const domNames = Array.from(document.querySelectorAll('#regions .region')).map((g) => g.dataset.region).join(',');
    if (domNames && names !== domNames) { location.reload(); return; }
    state = st;
    if (!past) drawState(st, false);
  }
  // drawState puts st on the map, the shops' roles and the settings; a
  // moment shown again (then) carries no traffic.
  function drawState(st, then) {
    for (const r of st.regions) {
      const g = $('region-' + r.name);
      if (!g) continue;
      const role = !r.up ? 'crashed' : (r.consensus.role || 'offline');
      // a region on another host whose agent the lab has lost: as last reported
      const roleText = (role === 'leader' ? '♛ leader' : role === 'crashed' ? '✕ crashed' : role) + (r.stale ? ' · stale' : '');
      g.setAttribute('class', 'region role-' + role + (r.up ? '' : ' down') + (r.stale ? ' stale' : ''));
      $('region-' + r.name + '-role').textContent = roleText;
      const b = r.breakers || {};
      const where = r.agent ? (r.stale ? ', its agent at ' + r.agent + ' is out of reach: shown as it last reported' : ', on its agent at ' + r.agent) : '';
      const tip = r.city + ' (' + r.name + '): ' + role + (r.up ? ', term ' + r.consensus.term : '') + where +
        ', breakers ' + stores.map((s) => storeShort(s) + ' ' + (b[s] || 'closed')).join(', ') + '. Enter opens: make leader, isolate, restart, crash.';
      g.setAttribute('aria-label', tip);
      const t = $('region-' + r.name + '-tip');
      if (t) t.textContent = tip;
      const shop = $('shop-' + r.name);
      if (shop) shop.classList.toggle('down', !r.up);
      for (const z of r.zones || []) { // geo store: one mark per zone, its member's role in the regional group
        const m = $('zone-' + z.name);
        if (!m) continue;
        const zr = z.up ? z.role : 'crashed';
        m.setAttribute('class', 'zone zone-' + zr);
        if (m.firstChild) m.firstChild.textContent = z.name + ': ' + zr + ' of ' + r.name + "'s regional group";
      }
      const sr = $('shop-' + r.name + '-role');
      if (sr) { sr.textContent = roleText; sr.className = 'shop-role role-' + role; }
      for (const s of stores) {
        const br = $('breaker-' + s + '-' + r.name);
        if (br) br.hidden = !b[s] || b[s] === 'closed';
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
      let label = Math.round(f.rttMs) + ' ms';
      let detail = 'up, round trip ' + label + (f.estimated ? ' (estimated from distance)' : '');
      if (f.measuredRttMs) { // regions on separate hosts: the real round trip between them
        const m = f.measuredRttMs < 10 ? f.measuredRttMs.toFixed(1) : Math.round(f.measuredRttMs);
        label += ' · ' + m + ' measured' + (f.overModel ? ' ⚠' : '');
        detail += ', measured ' + m + ' ms between the hosts' + (f.overModel
          ? ': more than the model, so the link is slower than the lab says'
          : ': the lab adds the rest');
      }
      if (ls === 'cut') { label = '✂ cut'; detail = 'cut both ways'; }
      else if (ls === 'oneway') {
        label = '✂ one way';
        detail = f.state === 'cut' ? a + ' → ' + b + ' cut, ' + b + ' → ' + a + ' up' : b + ' → ' + a + ' cut, ' + a + ' → ' + b + ' up';
      }
      $(g.id + '-label').textContent = label;
      const aria = 'Link ' + a + ' to ' + b + ': ' + detail + '. Enter cuts or heals both ways; Shift+Enter for one-way cuts and latency.';
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
        if (then) { tr.rate = 0; tr.bytesRate = 0; } else if (p && now > p.at) {
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
    if (!then) prevCounters = next;

    const q = st.replicated || { n: 0, w: 0, r: 0 };
    $('quorum-n').textContent = q.n;
    if ($('store-quorum')) $('store-quorum').textContent = 'W=' + q.w + ' R=' + q.r;
    for (const k of ['w', 'r']) {
      const input = $('quorum-' + k);
      input.max = Math.max(1, q.n);
      if (document.activeElement !== input && !input.dataset.dirty) {
        input.value = q[k];
        $('quorum-' + k + '-value').textContent = q[k];
      }
    }
    updateQuorumIndicator();
    const gc = $('group-commit');
    if (gc && st.consensus && document.activeElement !== gc) gc.checked = !!st.consensus.groupCommit;
    const sp = $('speed');
    if (sp && document.activeElement !== sp && st.speed) sp.value = String(st.speed);
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
    if ((id === 'verdict' || id === 'verdict-full') && node.dataset.sku && node.dataset.sku !== sku) return;
    const focused = document.activeElement && el.contains(document.activeElement) ? document.activeElement.id : null;
    el.replaceWith(node);
    if (focused && $(focused)) $(focused).focus();
    emit('fragment', { id, html });
  }
  async function refreshVerdict() {
    for (const q of ['', '&full=1']) {
      const res = await fetch('/ui/verdict?sku=' + encodeURIComponent(sku) + q, { credentials: 'same-origin' }).catch(() => null);
      const f = res ? await res.json().catch(() => null) : null;
      if (f && f.type === 'fragment') applyFragment(f.id, f.html);
      else if (f && f.error) { toast(f.error, true); return; }
    }
  }

  // ---------- space-time diagram
  const ROW_H = 24, LEFT = 0, TOP = 30, PX_PER_S = 220, GAP_MAX_S = 2, GAP_PX = 46, MIN_BAR = 10;
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
    // Every region's lane in the dock's height: rows shrink (to 11 px) when
    // the dock is short, and bars then go without their labels (titles stay).
    const panel = $('panel-timeline');
    let ROW = ROW_H;
    if (panel && panel.clientHeight) {
      const above = scroller.getBoundingClientRect().top - panel.getBoundingClientRect().top + panel.scrollTop;
      const legend = panel.querySelector('.legend-outcomes');
      const avail = panel.clientHeight - above - (legend ? legend.offsetHeight + 8 : 0) - TOP - 40; // the svg's foot, a scrollbar, the panel's padding
      ROW = Math.max(11, Math.min(ROW_H, Math.floor((avail / Math.max(1, regions.length) - 12) / stores.length)));
    }
    const compact = ROW < 22, LANE = (compact ? 4 : 12) + stores.length * ROW;
    const width = Math.max(scroller.clientWidth - 2, sc.end + 160);
    const height = TOP + regions.length * LANE + 10;
    el.setAttribute('width', width);
    el.setAttribute('height', height);
    el.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    const laneY = {};
    const lanes = $('timeline-lanes');
    while (lanes.firstChild) lanes.firstChild.remove();
    lanes.setAttribute('width', 120);
    lanes.setAttribute('height', height);
    regions.forEach((r, i) => {
      const y = TOP + i * LANE;
      laneY[r] = y;
      el.appendChild(svg('rect', { class: 'lane-bg' + (i % 2 ? ' alt' : ''), x: 0, y, width, height: LANE }));
      lanes.appendChild(svg('rect', { class: 'lane-bg' + (i % 2 ? ' alt' : ''), x: 0, y, width: 120, height: LANE }));
      lanes.appendChild(svg('text', { class: 'lane-name', x: 8, y: y + (compact ? Math.min(20, LANE - 4) : 20) }, r));
      if (!compact) lanes.appendChild(svg('text', { class: 'lane-sub', x: 8, y: y + 34 }, stores.map(storeShort).join(' · ') + ' rows'));
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
      for (const r of b.lanes) if (laneY[r] !== undefined) el.appendChild(svg('rect', { class: 'fault-band', x: x1, y: laneY[r], width: x2 - x1, height: LANE }));
    }
    // fault and heal markers; labels take the first of two rows where they
    // do not run into the previous label (else only the line and its title)
    const rowEnd = [-1e9, -1e9];
    for (const f of faults) {
      const x = sc.map(f.atMs);
      const healing = f.kind === 'heal' || f.kind === 'restart' || f.kind === 'reset' || f.kind === 'merge';
      el.appendChild(svg('line', { class: healing ? 'heal-line' : 'fault-line', x1: x, y1: TOP - 4, x2: x, y2: height - 6 }));
      const text = (f.kind === 'merge' ? '⇄ ' : healing ? '✚ ' : '✂ ') + f.kind;
      const w = text.length * 6.4 + 6;
      let row = rowEnd.findIndex((end) => end < x + 3);
      if (row < 0) continue;
      rowEnd[row] = x + 3 + w;
      const label = svg('text', { class: (healing ? 'heal-label' : 'fault-label') + ' seek', x: x + 3, y: 11 + row * 12, 'data-at': new Date(f.atMs + 1).toISOString() }, text);
      label.appendChild(svg('title', {}, (f.said && f.said.text ? f.said.text : f.kind + ': ' + (f.detail || '')) + ' (' + new Date(f.atMs).toLocaleTimeString() + ')'));
      el.appendChild(label);
    }
    for (const g of sc.gaps) el.appendChild(svg('text', { class: 'tick-label', x: g.x - 12, y: height - 2 }, '⋯ ' + Math.round(g.s) + ' s'));
    if (past) { // the moment the stage shows
      const x = sc.map(past.atMs);
      el.appendChild(svg('line', { class: 'moment-line', id: 'timeline-moment', x1: x, y1: 2, x2: x, y2: height - 6 }));
    }
    if (sc.start) el.appendChild(svg('text', { class: 'tick-label', x: LEFT + 10, y: height - 2 }, new Date(sc.start).toLocaleTimeString()));
    const labelEnd = {}; // lane row -> x where the last label ends
    for (const o of ops) {
      const y = laneY[o.region];
      if (y === undefined) continue;
      const row = Math.max(0, stores.indexOf(o.store));
      const x1 = sc.map(o.callMs), x2 = Math.max(sc.map(o.returnMs), x1 + MIN_BAR);
      // a click shows the stage as it was when it answered (replay.js)
      const g = svg('g', { class: 'bar seek o-' + (knownKind(o.outcome) ? o.outcome : 'other'), 'data-op': o.id, 'data-at': new Date(o.returnMs + 1).toISOString() });
      g.appendChild(svg('rect', { x: x1, y: y + (compact ? 2 : 4) + row * ROW, width: x2 - x1, height: Math.min(11, ROW - 3) }));
      const what = o.op === 'buy' ? 'buy' + (o.qty > 1 ? ' ' + o.qty : '') : o.op === 'read' ? 'read ' + o.quantity : 'stock ' + (o.qty || o.quantity);
      // a full label where there is room; just the outcome's symbol where
      // bars crowd; nothing where even that would run into the last label
      const key = o.region + row;
      const end = labelEnd[key] || 0;
      let text = what + ' ' + kindIcon(o.outcome) + ' ' + kindWord(o.outcome);
      if (end > x1) text = kindIcon(o.outcome);
      const lx = Math.max(x1, end);
      if (!compact && lx - x1 < 24) {
        labelEnd[key] = lx + text.length * 6.2 + 6;
        g.appendChild(svg('text', { x: lx, y: y + 4 + row * ROW + 21 }, text));
      }
      g.appendChild(svg('title', {}, o.region + ', ' + o.store + ': ' + (o.said && o.said.text ? o.said.text : o.op + ' → ' + kindWord(o.outcome) + ', ' + Math.round(o.returnMs - o.callMs) + ' ms')));
      el.appendChild(g);
    }
    if (!ops.length && !faults.length) el.appendChild(svg('text', { class: 'empty', x: LEFT + 10, y: TOP + 20 }, 'Nothing yet for ' + sku + ': buy, read or cut a link and it appears here.'));
    if ($('timeline-follow').checked) scroller.scrollLeft = scroller.scrollWidth;
  }
  function normOp(o, outcome) {
    return {
      id: o.id, region: o.region, store: o.store, sku: o.sku, op: o.op, qty: o.qty, quantity: o.quantity,
      outcome: o.outcome || (outcome && outcome.outcome), consistency: o.consistency,
      callMs: Date.parse(o.call), returnMs: Date.parse(o.return), said: o.said,
    };
  }
  function normFault(f, said) { return { id: f.id, kind: f.kind, regions: f.regions, detail: f.detail, atMs: Date.parse(f.at), said: f.said || said }; }
  let historyGen = 0; // a reset or another product makes a history on its way stale
  async function loadHistory() {
    const asked = performance.now(), gen = historyGen, forSku = sku;
    const res = await fetch('/api/history?sku=' + encodeURIComponent(sku) + '&last=500', { credentials: 'same-origin' }); // it keeps the newest 500
    const h = await res.json().catch(() => null);
    if (!h || h.error) { if (h && h.error) toast(h.error, true); return; }
    if (gen !== historyGen || forSku !== sku) return;
    // operations the stream brought while the history was on its way stay
    const hist = (h.operations || []).map((o) => normOp(o));
    const newest = hist.length ? hist[hist.length - 1].id : 0;
    ops = hist.concat(ops.filter((o) => o.sku === sku && o.id > newest)).slice(-500);
    const newer = (el) => Number(el.dataset.shownAt) > asked; // shown while the history was on its way
    if (!past) clearOutcomes(newer);
    // each shop shows its last buy or read on each store
    for (const o of past ? [] : ops) {
      const el = $('outcome-' + o.store + '-' + o.region);
      if (o.op === 'stock' || (el && newer(el))) continue;
      showOutcome({ op: o.op, store: o.store, region: o.region, sku: o.sku, outcome: o.outcome, quantity: o.quantity,
        consistency: o.consistency, latencyMs: o.returnMs - o.callMs, callMs: o.callMs, opId: o.id, fromHistory: true }, o.said);
    }
    document.querySelectorAll('.outcome.fresh').forEach((e) => e.classList.remove('fresh'));
    faults = (h.faults || []).map((f) => normFault(f)).slice(-200);
    const last = faults[faults.length - 1];
    if (last && last.kind === 'merge' && Date.now() - last.atMs < 15000) tellMerge(last.said && last.said.text);
    queueDraw();
    drawScore();
  }
  // ---------- captions over the map: a lesson step's story (lessons.js)
  // and, outside a step, the replicated store's merge after a heal
  // A merge shows for 15 s, over a step's story; the story comes back.
  let captionOwner = '', lessonLines = [];
  function caption(lines, owner) {
    const box = $('stage-caption');
    if (!box) return;
    if (owner === 'lesson') { lessonLines = lines; if (captionOwner === 'merge' || captionOwner === 'replay') return; }
    if (owner === 'merge' && captionOwner === 'replay') return; // a replay tells its own story
    captionOwner = lines.length ? owner : '';
    const key = owner + '|' + lines.join('|');
    if (box.dataset.key === key) return;
    box.dataset.key = key;
    box.textContent = '';
    box.hidden = !lines.length;
    lines.forEach((line, i) => {
      const p = document.createElement('p');
      p.className = i === lines.length - 1 ? 'newest' : 'older';
      p.textContent = line;
      box.appendChild(p);
    });
  }
  // endCaption hands the captions back to the lesson's story when owner
  // (a replay) ends.
  function endCaption(owner) {
    if (captionOwner !== owner) return;
    captionOwner = '';
    caption(lessonLines, 'lesson');
  }
  function tellMerge(text) {
    if (!text) return;
    caption([text], 'merge');
    clearTimeout(tellMerge.timer);
    tellMerge.timer = setTimeout(() => { if (captionOwner === 'merge') { captionOwner = ''; caption(lessonLines, 'lesson'); } }, 15000);
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
  let ws = null, backoff = 500, opened = false;
  // A delta frame says only what changed (web/delta.go): an object holds
  // the members that changed (null: removed); an object where the State
  // has an array holds the changed elements by index; anything else
  // replaces the value. Nothing is changed in place.
  function applyDelta(target, d) {
    if (d === null || typeof d !== 'object' || Array.isArray(d)) return d;
    if (Array.isArray(target)) {
      const out = target.slice();
      for (const k of Object.keys(d)) {
        const i = Number(k);
        if (Number.isInteger(i) && i >= 0 && i < out.length) out[i] = applyDelta(out[i], d[k]);
      }
      return out;
    }
    const out = target && typeof target === 'object' ? Object.assign({}, target) : {};
    for (const k of Object.keys(d)) {
      if (k === '__proto__') continue;
      if (d[k] === null) delete out[k]; else out[k] = applyDelta(out[k], d[k]);
    }
    return out;
  }
  // The dock panels whose frames this page wants: the open tab's, if it
  // is one of those the server spares a page that does not show them.
  let openTab = '';
  function panelsShown() { return openTab === 'checker' || openTab === 'load' ? [openTab] : []; }
  function sendPanels() {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'panels', show: panelsShown() }));
  }
  // catchUp reads what the stream could not bring: after a reconnect, or a
  // resync frame (the server's stream fell behind the lab and lost events).
  // At most one every 2 s (a starved machine under load may resync often;
  // each costs every viewer a history read).
  let lastCatchUp = -Infinity, catchUpTimer = 0;
  function catchUp() {
    if (catchUpTimer) return;
    const wait = Math.max(0, lastCatchUp + 2000 - performance.now());
    catchUpTimer = setTimeout(() => { catchUpTimer = 0; lastCatchUp = performance.now(); loadHistory(); refreshVerdict(); }, wait);
  }
  function connect() {
    const conn = $('conn-status');
    // Deltas, and the frames of the dock panel that is open only (web/doc.go).
    ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws?delta=1&panels=' + panelsShown().join(','));
    ws.onopen = () => {
      backoff = 500; conn.textContent = 'live'; conn.className = 'badge conn live';
      if (opened) catchUp(); // the start reads the history itself
      opened = true;
    };
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
        case 'delta':
          // A delta turns the State we hold into the next; a gap (never
          // expected) is mended by a fresh connection, which starts whole.
          if (!state || f.base !== state.version) { ws.close(); return; }
          f = { type: 'state', state: applyDelta(state, f.delta) };
          applyState(f.state);
          break;
        case 'operation': {
          if (f.outcome && !past) showOutcome(Object.assign({}, f.outcome, { callMs: f.operation ? Date.parse(f.operation.call) : Date.now() }), f.said);
          const o = f.operation;
          if (o && o.sku === sku && !ops.some((x) => x.id === o.id)) {
            ops.push(normOp(o, f.outcome));
            if (ops.length > 500) ops.shift();
            queueDraw();
            drawScore();
          }
          if (f.outcome) addSR(f.outcome.region + ': ' + wordsOf(f.outcome, f.said).text);
          break;
        }
        case 'fault':
          if (f.fault && !faults.some((x) => x.id === f.fault.id)) { faults.push(normFault(f.fault, f.said)); queueDraw(); addSR(f.said ? f.said.text : 'Fault: ' + f.fault.kind + ' ' + (f.fault.detail || '')); }
          if (f.fault && f.fault.kind === 'merge' && !past) tellMerge(f.said ? f.said.text : f.fault.detail);
          break;
        case 'reset':
          if (past) goLive(); // the moments it showed are gone
          ops = []; faults = []; historyGen++;
          clearOutcomes(f.firstOpId ? (el) => Number(el.dataset.opId) >= f.firstOpId : null);
          queueDraw();
          drawScore();
          refreshVerdict();
          break;
        case 'fragment': applyFragment(f.id, f.html); break;
        case 'resync': catchUp(); break;
      }
      emit(f.type, f);
    };
  }

  // ---------- presenter actions
  function qtyOf(id) { const e = $(id); if (!e) return 1; const v = e.value.trim(); return v === '' ? null : Number(v); }
  async function buy(store, region, btn) {
    if (past) goLive();
    const r = await busy(btn, () => api('POST', '/api/stores/' + store + '/skus/' + encodeURIComponent(sku) + '/buy', { region, qty: qtyOf('buy-qty-' + region) }));
    if (r.data && r.data.outcome) showOutcome(Object.assign({ callMs: Date.now() - (r.data.latencyMs || 0) }, r.data), r.data.said);
  }
  async function read(store, region, btn) {
    if (past) goLive();
    let c = $('read-consistency') ? $('read-consistency').value : 'linearizable';
    if (store !== 'consensus') c = 'linearizable'; // the others read their own way (cached is the consensus store's alone)
    const r = await busy(btn, () => api('GET', '/api/stores/' + store + '/skus/' + encodeURIComponent(sku) + '?region=' + encodeURIComponent(region) + '&consistency=' + c));
    if (r.data && r.data.outcome) showOutcome(Object.assign({ callMs: Date.now() - (r.data.latencyMs || 0) }, r.data), r.data.said);
  }
  function stockRegion() {
    if (!state) return null;
    const leader = state.regions.find((r) => r.up && r.consensus.role === 'leader');
    const up = state.regions.find((r) => r.up);
    return (leader || up || state.regions[0]).name;
  }
  async function stockAll(btn) {
    const region = stockRegion();
    const quantity = qtyOf('stock-both-qty');
    await busy(btn, async () => {
      const done = [];
      for (const s of stores) {
        const r = await api('PUT', '/api/stores/' + s + '/skus/' + encodeURIComponent(sku), { region, quantity });
        if (r.data && r.data.outcome) { showOutcome(r.data, r.data.said); if (r.data.outcome === 'ok') done.push(s); }
        if (!r.ok && r.status !== 503 && r.status !== 409) return;
      }
      if (quantity !== null && done.length) toast('Stocked ' + quantity + ' × ' + sku + ' in ' + joinAnd(done) + ' (written from ' + region + ').');
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
  // Tab stays inside an open dialog (help) or menu.
  function trapFocus(e, box) {
    const items = Array.from(box.querySelectorAll('button, [href], input, select, [tabindex]:not([tabindex="-1"])')).filter((x) => !x.disabled && x.offsetParent !== null);
    if (!items.length) return;
    const first = items[0], last = items[items.length - 1];
    if (!box.contains(document.activeElement)) { e.preventDefault(); first.focus(); return; }
    if (e.shiftKey && document.activeElement === first) { e.preventDefault(); last.focus(); }
    else if (!e.shiftKey && document.activeElement === last) { e.preventDefault(); first.focus(); }
  }

  // ---------- tabs of the dock
  function selectTab(id, focus) {
    const tab = $('tab-' + id);
    if (!tab) return;
    document.querySelectorAll('.tabs [role=tab]').forEach((t) => {
      const on = t === tab;
      t.setAttribute('aria-selected', String(on));
      t.tabIndex = on ? 0 : -1;
      const p = $(t.getAttribute('aria-controls'));
      if (p) p.hidden = !on;
    });
    if (focus) tab.focus();
    if (id === 'timeline') queueDraw();
    if (id !== openTab) { openTab = id; sendPanels(); emit('tab', { id }); }
  }
  function setPresent(on) {
    body.classList.toggle('present', on);
    $('present-toggle').setAttribute('aria-pressed', String(on));
    try { sessionStorage.setItem('caplab.present', on ? '1' : '0'); } catch (e) { /* private mode */ }
    queueDraw();
    emit('present', {});
  }

  // ---------- wiring
  document.addEventListener('click', (e) => {
    const t = e.target.closest('button, .link, .region, a');
    if (!t) { if (!e.target.closest('.popover')) closeMenus(); return; }
    if (t.getAttribute('role') === 'tab') return selectTab(t.id.replace(/^tab-/, ''));
    if (t.id === 'help-open') return toggleHelp(true);
    if (t.id === 'help-close') return toggleHelp(false);
    if (t.id === 'present-toggle') return setPresent(!body.classList.contains('present'));
    if (t.id === 'verdict-refresh') return refreshVerdict();
    if (t.id === 'link-menu-close' || t.id === 'region-menu-close') return closeMenus(true);
    if (t.classList && t.classList.contains('link')) {
      if (!presenter) return viewerOnly();
      if (past) goLive(); // a change is made to the live lab
      if (e.shiftKey || e.altKey) return openLinkMenu(t);
      return setLink(t.dataset.a, t.dataset.b, t.dataset.state !== 'up', false);
    }
    if (t.classList && t.classList.contains('region')) {
      if (!presenter) return viewerOnly();
      return openRegionMenu(t);
    }
    if (!presenter || t.disabled) return;
    const region = t.dataset.region;
    if (past && (['isolate', 'bridge', 'heal'].includes(t.dataset.action) || /^(reset|stock-both|quorum-|link-menu-(cut|heal|rtt-apply)|region-menu-(crash|restart|lead|isolate))/.test(t.id))) goLive();
    switch (t.dataset.action) {
      case 'buy': return buy(t.dataset.store, region, t);
      case 'read': return read(t.dataset.store, region, t);
      case 'isolate': return isolate(region);
      case 'bridge': return bridge($('bridge-region').value);
      case 'heal': return heal();
    }
    const m = menuFor;
    switch (t.id) {
      case 'reset': return reset(t);
      case 'stock-both': return stockAll(t);
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
    if (e.key === 'Tab') {
      if (!$('help').hidden) return trapFocus(e, $('help'));
      for (const id of ['region-menu', 'link-menu']) if (!$(id).hidden) return trapFocus(e, $(id));
    }
    if (t.getAttribute && t.getAttribute('role') === 'tab' && /^(ArrowLeft|ArrowRight|Home|End)$/.test(e.key)) {
      const tabs = Array.from(document.querySelectorAll('.tabs [role=tab]'));
      let i = tabs.indexOf(t);
      i = e.key === 'Home' ? 0 : e.key === 'End' ? tabs.length - 1 : (i + (e.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length;
      e.preventDefault();
      return selectTab(tabs[i].id.replace(/^tab-/, ''), true);
    }
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
    if (e.key === 'v') { emit('lesson-reveal', {}); return; }
    if (e.key === 'q') { emit('lesson-question', {}); return; }
    if (e.key === 'g') { emit('group-reset', {}); return; }
    if (e.key === 'b') { emit('lesson-back', {}); return; }
    if (!presenter) return;
    if (/^[1-7]$/.test(e.key)) { const name = regionNames()[+e.key - 1]; if (name) isolate(name); return; }
    if (e.key === 'h') return heal();
    if (e.key === 'r') return reset($('reset'));
  });
  if ($('speed')) $('speed').addEventListener('change', async (e) => {
    const factor = Number(e.target.value);
    const r = await api('PUT', '/api/network/speed', { factor });
    if (r.ok) toast(factor === 1 ? 'Every link is back to the delays the lab started with.' : 'Every link now takes ' + factor + ' × the delay the lab started with.');
  });
  const gcBox = $('group-commit');
  if (gcBox) gcBox.addEventListener('change', async (e) => {
    const on = e.target.checked;
    const r = await api('PUT', '/api/stores/consensus/config', { groupCommit: on });
    if (r.ok) toast(on ? 'Consensus store: a region\'s concurrent buys of one product now share one Raft round.' : 'Consensus store: every buy is its own Raft round again.');
    else e.target.checked = !on;
  });
  for (const k of ['w', 'r']) {
    $('quorum-' + k).addEventListener('input', (e) => {
      e.target.dataset.dirty = '1';
      $('quorum-' + k + '-value').textContent = e.target.value;
      updateQuorumIndicator();
    });
  }
  // setProduct makes v the page's product: its history, score and checker.
  function setProduct(v) {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(v) || v === sku) return false;
    sku = v;
    body.dataset.sku = v;
    const input = $('sku');
    if (input && document.activeElement !== input) input.value = v;
    ops = []; historyGen++;
    for (const id of ['verdict', 'verdict-full']) { const e = $(id); if (e) e.dataset.sku = v; }
    loadHistory();
    refreshVerdict();
    drawScore();
    return true;
  }
  $('sku').addEventListener('change', (e) => {
    const v = e.target.value.trim();
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(v)) { toast('A SKU is 1 to 64 letters, digits, ".", "_" or "-", e.g. IPHONE-15-PRO.', true); e.target.value = sku; return; }
    setProduct(v);
  });
  window.addEventListener('resize', queueDraw);

  // ---------- a moment shown again (replay.js)
  // showPast puts m (GET /api/state?at=T: a State, "at", "shops") on the
  // stage; goLive brings the live lab back.
  function showPast(m) {
    const first = !past;
    past = { atMs: Date.parse(m.at) };
    body.classList.add('past');
    drawState(m, true);
    clearOutcomes();
    for (const o of m.shops || []) {
      showOutcome({ op: o.op, store: o.store, region: o.region, sku: o.sku, outcome: o.outcome, quantity: o.quantity,
        consistency: o.consistency, latencyMs: Date.parse(o.return) - Date.parse(o.call), callMs: Date.parse(o.call), opId: o.id, fromHistory: true }, o.said);
    }
    document.querySelectorAll('.outcome.fresh').forEach((e) => e.classList.remove('fresh'));
    drawScore();
    queueDraw();
    if (first) emit('past', { at: m.at });
  }
  // showPastOutcome is one shop's answer during a replay.
  function showPastOutcome(o) {
    if (!past) return;
    showOutcome({ op: o.op, store: o.store, region: o.region, sku: o.sku, outcome: o.outcome, quantity: o.quantity,
      consistency: o.consistency, latencyMs: Date.parse(o.return) - Date.parse(o.call), callMs: Date.parse(o.call), opId: o.id }, o.said);
  }
  // pastNetwork draws st (a replay's network after a fault) without
  // touching the shops.
  function pastNetwork(st) {
    if (!past || !st) return;
    drawState(st, true);
  }
  // pastAt moves the moment the stage shows (a replay's clock) without
  // drawing the State again: the score and the timeline's cursor follow.
  function pastAt(ms) {
    if (!past) return;
    past.atMs = ms;
    drawScore();
    queueDraw();
  }
  function goLive() {
    if (!past) return;
    past = null;
    body.classList.remove('past');
    if (state) drawState(state, false);
    drawScore();
    queueDraw();
    loadHistory(); // the shops' live answers
    emit('live', {});
  }

  window.caplab = {
    on(type, fn) { (listeners[type] = listeners[type] || []).push(fn); },
    state() { return state; },
    api,
    // for static/lessons.js (and other panels, such as a load panel)
    toast,
    busy,
    selectTab,
    presenter,
    // story mode (lessons.js): the page follows the lesson's product, and
    // names the step each answer belongs to
    product() { return sku; },
    setProduct,
    setStepOf(fn) { stepOf = fn; },
    caption,
    redrawOutcomes() { loadHistory(); },
    // scrub back and replay (replay.js)
    showPast,
    showPastOutcome,
    pastNetwork,
    pastAt,
    endCaption,
    pastMs() { return past ? past.atMs : null; },
    goLive,
    isPast() { return !!past; },
  };

  // ---------- start
  try { if (sessionStorage.getItem('caplab.present') === '1') setPresent(true); } catch (e) { /* private mode */ }
  const firstTab = document.querySelector('.tabs [role=tab][aria-selected=true]');
  if (firstTab) selectTab(firstTab.id.replace(/^tab-/, ''));
  if (new URLSearchParams(location.search).get('present') === '1') setPresent(true);
  connect();
  loadHistory();
  refreshVerdict();
})();
