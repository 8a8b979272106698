// caplab load panel (web/load.templ). Our own script; plots with uPlot
// (static/vendor/uplot/). It fills the panel from GET /api/load at start
// and whenever its tab opens, and then from the /ws "load" frames (one a
// second while a load runs and the tab is open), and
// lets the presenter start and stop a load (POST / DELETE /api/load).
(() => {
  'use strict';

  const panel = document.getElementById('load-panel');
  if (!panel || !window.caplab || !window.uPlot) return;
  const cap = window.caplab;
  const $ = (id) => document.getElementById(id);
  const stores = [...panel.querySelectorAll('.load-store')].map((e) => e.dataset.store);

  // Buy outcomes, stacked bottom-up in this order; any other kind is "other".
  const KINDS = ['ok', 'sold_out', 'unavailable', 'fail_fast', 'conflict', 'overloaded', 'shed', 'other'];
  const KIND_COLORS = {
    ok: '#2e7d32', sold_out: '#90a4ae', unavailable: '#c62828', fail_fast: '#ef6c00',
    conflict: '#6a1b9a', overloaded: '#ad1457', shed: '#5d4037', other: '#212121',
  };
  const REGION_COLORS = ['#1565c0', '#00897b', '#f9a825', '#8e24aa', '#d84315', '#3949ab', '#43a047'];
  const KEEP = 300; // seconds kept (as the server keeps)
  const VIEW = 60;  // seconds the plots show: the newest minute, so a cut is not a sliver
  const OPENS = ['cut', 'partition', 'crash'];
  const CLOSES = ['heal', 'restart', 'reset'];

  let run = null;   // {key, regions, slo, t: [], stores: {store: {kinds: {k: []}, p99: {region: []}, oversold: []}}}
  let faults = [];  // [{t, kind, detail}]
  const plots = {}; // store -> {tput, p99, over}

  // ---------- data
  function newRun(st) {
    const r = { key: st.startedAt || '', regions: st.regions || [], slo: (st.config && st.config.sloP99Ms) || 150, t: [], stores: {} };
    for (const s of stores) {
      const d = { kinds: {}, p99: {}, oversold: [] };
      KINDS.forEach((k) => { d.kinds[k] = []; });
      r.regions.forEach((g) => { d.p99[g] = []; });
      r.stores[s] = d;
    }
    return r;
  }

  // addSamples appends one second (samples of one t) to the run.
  function addSamples(samples) {
    if (!samples.length) return;
    const t = samples[0].t;
    if (run.t.length && t <= run.t[run.t.length - 1]) return; // already have it
    run.t.push(t);
    for (const s of stores) {
      const d = run.stores[s];
      KINDS.forEach((k) => d.kinds[k].push(0));
      run.regions.forEach((g) => d.p99[g].push(null));
      d.oversold.push(d.oversold.length ? d.oversold[d.oversold.length - 1] : 0);
    }
    const i = run.t.length - 1;
    for (const smp of samples) {
      const d = run.stores[smp.store];
      if (!d) continue;
      for (const [k, n] of Object.entries(smp.outcomes || {})) {
        const key = KINDS.includes(k) ? k : 'other';
        d.kinds[key][i] += n;
      }
      if (d.p99[smp.region] && (smp.ok + smp.soldOut + smp.refused) > 0) d.p99[smp.region][i] = smp.p99Ms;
      d.oversold[i] = smp.oversold;
    }
    if (run.t.length > KEEP) {
      run.t.shift();
      for (const s of stores) {
        const d = run.stores[s];
        KINDS.forEach((k) => d.kinds[k].shift());
        run.regions.forEach((g) => d.p99[g].shift());
        d.oversold.shift();
      }
    }
  }

  function groupByT(samples) {
    const by = new Map();
    for (const s of samples || []) {
      if (!by.has(s.t)) by.set(s.t, []);
      by.get(s.t).push(s);
    }
    return [...by.keys()].sort((a, b) => a - b).map((t) => by.get(t));
  }

  // bands turns fault marks into shaded intervals [t0, t1] (t1 null: open).
  function bands() {
    const out = [];
    let open = null;
    for (const f of faults) {
      if (OPENS.includes(f.kind)) {
        if (!open) { open = { t0: f.t, t1: null, label: f.detail }; out.push(open); }
      } else if (CLOSES.includes(f.kind) && open) {
        open.t1 = f.t;
        open = null;
      }
    }
    return out;
  }

  // ---------- plots
  function drawBands(u) {
    const ctx = u.ctx;
    const last = run && run.t.length ? run.t[run.t.length - 1] : 0;
    ctx.save();
    ctx.beginPath();
    ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
    ctx.clip(); // a long label stays inside the plot
    ctx.textAlign = 'left';
    ctx.textBaseline = 'alphabetic';
    for (const b of bands()) {
      const x0 = u.valToPos(b.t0, 'x', true);
      const x1 = u.valToPos(b.t1 == null ? last : b.t1, 'x', true);
      ctx.fillStyle = 'rgba(198, 40, 40, 0.13)';
      ctx.fillRect(x0, u.bbox.top, Math.max(x1 - x0, 2), u.bbox.height);
      ctx.fillStyle = 'rgba(140, 20, 20, 0.85)';
      ctx.font = Math.round(11 * devicePixelRatio) + 'px sans-serif';
      ctx.fillText('✂ ' + b.label, x0 + 4, u.bbox.top + 12 * devicePixelRatio);
    }
    ctx.restore();
  }

  function width(el) { return Math.max(el.clientWidth || 300, 200); }

  // Plot heights: as tall as the dock's Load tab allows, between 110 and
  // 170 px for the two main plots (side by side; the oversold strip below
  // them about half as tall), so that the stores stay side by side and the
  // panel never pushes the map and shops away: when the dock is shorter,
  // the verdicts show first and the tab scrolls to the plots. Outside a
  // dock (or while hidden) the full 170.
  const FULL = 170, MIN = 110;
  let plotH = FULL;
  let textHeights = ''; // the verdicts' and the checked line's heights when the plots were last sized
  function fitHeight() {
    const dock = panel.closest('.panel');
    if (!dock || !dock.clientHeight) return FULL;
    const first = panel.querySelector('.load-store');
    if (!first) return FULL;
    const p = plots[first.dataset.store];
    // what a store's column holds besides the plots (heading, verdict, titles, legends)
    const drawn = p ? Math.max(p.tput.height, p.p99.height) + p.over.height : 0;
    const other = first.offsetHeight - drawn;
    const top = first.getBoundingClientRect().top - dock.getBoundingClientRect().top + dock.scrollTop;
    const below = $('load-checked') ? $('load-checked').offsetHeight + 12 : 12;
    const room = dock.clientHeight - top - other - below;
    return Math.max(MIN, Math.min(FULL, Math.floor(room / 1.5)));
  }
  function sizeAll() {
    plotH = fitHeight();
    for (const s of stores) {
      const p = plots[s];
      if (!p) continue;
      p.tput.setSize({ width: width($('load-tput-' + s)), height: plotH });
      p.p99.setSize({ width: width($('load-p99-' + s)), height: plotH });
      p.over.setSize({ width: width($('load-oversold-' + s)), height: Math.round(plotH / 2) });
    }
    panel.dataset.plotHeight = String(plotH);
  }

  function makePlots() {
    for (const s of stores) {
      if (plots[s]) Object.values(plots[s]).forEach((p) => p.destroy());
      const d = run.stores[s];
      const tputEl = $('load-tput-' + s), p99El = $('load-p99-' + s), overEl = $('load-oversold-' + s);
      tputEl.textContent = ''; p99El.textContent = ''; overEl.textContent = '';
      const hooks = { drawClear: [drawBands] };
      const x = { label: 'second' };
      const legend = { live: false };
      // Axis text in the page's ink (presenter mode is dark), no x label:
      // the titles say what the axes hold.
      const cs = getComputedStyle(document.body);
      const ink = cs.color, dark = document.body.classList.contains('present');
      const grid = dark ? 'rgba(255,255,255,0.16)' : 'rgba(0,0,0,0.08)'; // translucent: a fault band shows through
      const px = Math.round(parseFloat(cs.fontSize) * 0.75);
      const axis = (o) => Object.assign({ stroke: ink, font: px + 'px system-ui, sans-serif', labelFont: px + 'px system-ui, sans-serif',
        grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } }, o || {});
      // Throughput, stacked: series i is the sum of the first n-i kinds, drawn
      // largest first so that each smaller sum paints over it.
      const rev = KINDS.slice().reverse();
      const tputSeries = [x].concat(rev.map((k) => ({
        label: k.replace('_', ' '), stroke: KIND_COLORS[k], fill: KIND_COLORS[k] + 'cc', width: 1, points: { show: false },
        value: (u, v, si, idx) => (idx == null ? '' : String(d.kinds[k][idx] || 0)),
      })));
      const tput = new uPlot({
        title: 'Buys/s by outcome', width: width(tputEl), height: plotH, hooks, legend,
        scales: { x: { time: false } }, axes: [axis({ label: 's since the doors opened', labelSize: px + 6 }), axis({ label: 'buys/s', labelSize: px + 6 })],
        series: tputSeries,
      }, stackedData(s), tputEl);
      plots[s] = { tput };
      showKinds(s);
      const regions = run.regions;
      const p99 = new uPlot({
        title: 'p99 per region (ms), dashed: SLO', width: width(p99El), height: plotH, hooks, legend,
        scales: { x: { time: false }, y: { range: (u, min, max) => [0, Math.max(max || 0, run.slo * 1.3)] } },
        axes: [axis({ label: 's since the doors opened', labelSize: px + 6 }), axis({ label: 'ms', labelSize: px + 6 })],
        series: [x].concat(regions.map((g, i) => ({ label: g, stroke: REGION_COLORS[i % REGION_COLORS.length], width: 2, spanGaps: false })),
          [{ label: 'SLO', stroke: '#c62828', dash: [8, 6], width: 2, points: { show: false } }]),
      }, p99Data(s), p99El);
      const over = new uPlot({
        title: 'Units oversold (all SKUs)', width: width(overEl), height: Math.round(plotH / 2), hooks, legend,
        scales: { x: { time: false }, y: { range: (u, min, max) => [0, Math.max(max || 0, 5)] } },
        axes: [axis(), axis()],
        series: [x, { label: 'oversold', stroke: '#b3261e', fill: '#b3261e33', width: 2 }],
      }, overData(s), overEl);
      plots[s] = { tput, p99, over };
    }
  }

  // from is the first index of the newest VIEW seconds.
  function from() {
    const last = run.t.length ? run.t[run.t.length - 1] : 0;
    let i = 0;
    while (i < run.t.length && run.t[i] <= last - VIEW) i++;
    return i;
  }
  function stackedData(s) {
    const d = run.stores[s], i0 = from();
    const t = run.t.slice(i0);
    const cum = [];
    let acc = t.map(() => 0);
    for (const k of KINDS) {
      acc = acc.map((v, i) => v + d.kinds[k][i0 + i]);
      cum.push(acc);
    }
    return [t].concat(cum.slice().reverse());
  }

  function p99Data(s) {
    const d = run.stores[s], i0 = from();
    const t = run.t.slice(i0);
    return [t].concat(run.regions.map((g) => d.p99[g].slice(i0)), [t.map(() => run.slo)]);
  }
  function overData(s) { const i0 = from(); return [run.t.slice(i0), run.stores[s].oversold.slice(i0)]; }

  // Only the outcomes that happened have a legend entry (and a series).
  function showKinds(s) {
    const p = plots[s];
    if (!p) return;
    const d = run.stores[s], i0 = from();
    const rev = KINDS.slice().reverse();
    rev.forEach((k, i) => {
      const any = d.kinds[k].slice(i0).some((n) => n > 0);
      if (p.tput.series[i + 1].show !== any) p.tput.setSeries(i + 1, { show: any });
    });
  }

  // phases is each store's share of buys answered (ok or sold out) before,
  // during and after the first fault band, for the bars under its verdict.
  function phases(s) {
    const b = bands()[0];
    if (!b) return null;
    const d = run.stores[s];
    const out = { before: [0, 0], during: [0, 0], after: [0, 0] };
    run.t.forEach((t, i) => {
      const ph = t < b.t0 ? 'before' : (b.t1 == null || t <= b.t1) ? 'during' : 'after';
      let all = 0;
      for (const k of KINDS) if (k !== 'shed') all += d.kinds[k][i];
      out[ph][0] += d.kinds.ok[i] + d.kinds.sold_out[i];
      out[ph][1] += all;
    });
    return out;
  }
  function drawPhases() {
    for (const s of stores) {
      const el = $('load-phases-' + s);
      if (!el) continue;
      const ph = phases(s);
      el.hidden = !ph;
      if (!ph) continue;
      el.textContent = '';
      for (const name of ['before', 'during', 'after']) {
        const [served, all] = ph[name];
        if (!all) continue;
        const pct = Math.round(100 * served / all);
        const row = document.createElement('div');
        row.className = 'phase' + (pct < 99 ? ' bad' : '');
        const label = document.createElement('span');
        label.textContent = name;
        row.title = pct + '% of the buys answered ' + name + (name === 'during' ? ' the cut' : ' it') + ' were served (ok or sold out)';
        const bar = document.createElement('span');
        bar.className = 'phase-bar';
        const fill = document.createElement('span');
        fill.style.width = pct + '%';
        bar.appendChild(fill);
        const n = document.createElement('span');
        n.textContent = pct + '%';
        row.append(label, bar, n);
        el.appendChild(row);
      }
    }
  }

  function redraw() {
    for (const s of stores) {
      const p = plots[s];
      if (!p) continue;
      p.tput.setData(stackedData(s));
      p.p99.setData(p99Data(s));
      p.over.setData(overData(s));
      showKinds(s);
    }
    drawPhases();
    panel.dataset.samples = String(run.t.length);
    panel.dataset.bands = String(bands().length);
  }

  // ---------- status
  function showStatus(st) {
    panel.dataset.state = st.state;
    const el = $('load-status');
    const c = st.config;
    let text;
    switch (st.state) {
      case 'idle': text = 'No load yet.'; break;
      case 'stocking': text = 'Stocking the shelves: ' + st.stocking + ' of ' + st.stockingTotal + ' …'; break;
      case 'running': text = 'Running: ' + Math.round(st.elapsedS) + ' of ' + Math.round(st.durationS) + ' s, ' + c.rate + ' buys and ' + (c.rate * c.readsPerBuy) + ' reads a second per region.'; break;
      case 'draining': text = 'Stopping: waiting for the answers still on their way …'; break;
      case 'checking': text = 'The checker is judging the recorded history …'; break;
      case 'failed': text = 'The load could not start: ' + (st.reason || '') ; break;
      default: text = 'Load ' + st.state + ' after ' + Math.round(st.elapsedS) + ' s' + (st.reason && st.state === 'stopped' ? ' (' + st.reason + ')' : '') + '.';
    }
    el.textContent = text;
    for (const ss of st.stores || []) {
      const v = $('load-verdict-' + ss.store);
      if (!v) continue;
      let line = ss.verdict;
      if (ss.check) line += ' — checker: ' + (ss.check.linearizable ? 'linearizable' : 'NOT linearizable') + ' (' + ss.check.operations + ' recorded operations)';
      v.textContent = line;
      v.title = line; // whole, where the verdict is clamped (a projector: one line)
      const refused = (ss.regions || []).some((f) => (f.admittedAvailability ?? f.availability) < 99); // as the verdict: shed buys apart
      // the colour says what the verdict says: oversold, refused or the SLO missed is red
      const bad = ss.oversold > 0 || refused || ss.sloMet === false;
      v.classList.toggle('bad', bad);
      v.classList.toggle('good', !bad);
      const slo = $('load-slo-' + ss.store);
      if (slo) {
        const worst = Math.max(0, ...(ss.regions || []).map((f) => f.p99Ms || 0));
        const limit = (c && c.sloP99Ms) || 150;
        const met = ss.sloMet !== false && worst <= limit;
        // said once: the verdict names the SLO when it has a p99 to judge
        slo.textContent = worst && !/SLO/.test(line) ? 'p99 ' + Math.round(worst) + ' ms: ' + (met ? 'within' : 'misses') + ' the ' + limit + ' ms SLO' : '';
        slo.className = 'load-slo ' + (worst ? (met ? 'good' : 'bad') : '');
      }
    }
    // The checker row judges the page's product (the doorbuster); what the
    // load oversold over every SKU is said beside it.
    const scope = $('verdict-scope');
    if (scope) {
      const over = (st.stores || []).filter((x) => x.oversold > 0).map((x) => x.store + ' ' + x.oversold);
      scope.hidden = st.state === 'idle' || !over.length;
      scope.textContent = over.length ? 'this product only; the load oversold ' + over.join(', ') + ' units over all its SKUs (Load tab)' : '';
    }
    document.body.classList.toggle('load-running', ['stocking', 'running', 'draining', 'checking'].includes(st.state));
    $('load-checked').textContent = st.checked || '';
    // A verdict that wraps to another line (a shed region named, say)
    // takes room from the plots: size them again, or the tab overflows.
    const hs = [...panel.querySelectorAll('.load-verdict')].map((v) => v.offsetHeight).join(',') + '|' + $('load-checked').offsetHeight;
    if (hs !== textHeights) { textHeights = hs; sizeAll(); }
    const running = ['stocking', 'running', 'draining', 'checking'].includes(st.state);
    if (running && c) { // a page opened during a run shows the run's settings
      const r = $('load-rate'), m = $('load-mix');
      if (r && c.rate) { r.value = c.rate; $('load-rate-out').textContent = String(c.rate); }
      if (m && c.readsPerBuy != null) m.value = c.readsPerBuy;
    }
    const startBtn = $('load-start'), stopBtn = $('load-stop');
    if (document.body.dataset.role === 'presenter') {
      startBtn.disabled = running;
      stopBtn.disabled = !running;
    }
  }

  function apply(st, samples) {
    const key = st.startedAt || '';
    if (!run || samples || (key && run.key !== key) || (!run.regions.length && st.regions && st.regions.length)) {
      run = newRun(st);
      faults = [];
      if (samples) groupByT(samples).forEach(addSamples);
      makePlots();
    }
    faults = st.faults || faults;
    if (st.latest && st.latest.length) addSamples(st.latest);
    redraw();
    showStatus(st);
  }

  // ---------- controls
  const rate = $('load-rate');
  rate.addEventListener('input', () => { $('load-rate-out').textContent = rate.value; });
  $('load-start').addEventListener('click', async () => {
    const res = await cap.api('POST', '/api/load', {
      rate: +rate.value, readsPerBuy: +$('load-mix').value, duration: $('load-duration').value,
    });
    if (res.ok && res.data) apply(res.data);
  });
  $('load-stop').addEventListener('click', async () => {
    $('load-status').textContent = 'Stopping …';
    const res = await cap.api('DELETE', '/api/load');
    if (res.ok && res.data) apply(res.data);
  });

  // Size the plots when the tab opens (the panel was hidden, 0 wide) and
  // when the window or the dock changes size.
  let resizeTimer = null;
  const resize = () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { sizeAll(); requestAnimationFrame(sizeAll); }, 100); // twice: the second measures the titles and legends at the new width
  };
  window.addEventListener('resize', resize);
  const dock = panel.closest('.panel');
  if (dock && window.ResizeObserver) new ResizeObserver(resize).observe(dock);

  cap.on('load', (f) => { if (f.load) apply(f.load); });
  // The consensus store's batching and caches, from the lab's state: Raft
  // rounds (Txns its buys sent) per unit sold since this load began, and
  // how far behind each region's cache may be.
  let roundsBase = null;
  cap.on('state', (f) => {
    const st = (f && f.state) || f;
    const el = $('load-batching');
    if (!st || !st.consensus || !el) return;
    const c = st.consensus;
    const running = panel.dataset.state === 'running' || panel.dataset.state === 'draining';
    if (!running) roundsBase = null;
    else if (!roundsBase) roundsBase = { rounds: c.rounds, units: c.unitsSold };
    const b = roundsBase || { rounds: 0, units: 0 };
    const units = c.unitsSold - b.units;
    let text = 'Group commit ' + (c.groupCommit ? 'on' : 'off') + '. ';
    text += units > 0 ? 'Raft rounds per unit sold' + (roundsBase ? ' (this load)' : '') + ': ' + ((c.rounds - b.rounds) / units).toFixed(2) + '.' : 'No unit sold yet.';
    const lags = (st.regions || []).filter((r) => r.cache).map((r) => r.name + ' ' + (r.cache.ms < 0 ? '?' : Math.round(r.cache.ms) + ' ms') + (r.cache.revisions > 0 ? ' / ' + r.cache.revisions + ' rev' : ''));
    if (lags.length) text += ' Cache lag: ' + lags.join(', ') + '.';
    el.textContent = text;
  });
  // Presenter mode changes the colours and the type size: draw again.
  cap.on('present', () => { if (run) { makePlots(); redraw(); resize(); } });
  // For tests and the curious: the uPlot instances and the band intervals.
  window.caplabLoad = { plots, bands };
  // The whole run with its samples: at start, and when the tab opens —
  // the stream sends load frames only while the tab is open.
  function fetchRun() {
    fetch('/api/load', { credentials: 'same-origin' })
      .then((r) => r.json())
      .then((st) => apply(st, st.samples))
      .catch(() => {});
  }
  cap.on('tab', (t) => { if (t.id === 'load') fetchRun(); });
  fetchRun();
})();
