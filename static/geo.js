// caplab geo allocation bars. Each region's geo shop cell shows that
// region's allocation of the current product (a small bar, its share of
// every region's units, and the number). Units a region cannot reach —
// held in regions cut off from it, or down — are stranded: during a
// partition those cells are highlighted. The numbers come from
// GET /api/stores/geo/skus/{sku}/allocations?region=R (not an operation:
// nothing lands in the history), seen from R = the region of the last geo
// buy or read (else the first region up), fetched after every geo
// operation, fault and reset, and when regions or links change
// (debounced: at most one fetch a second).
(() => {
  'use strict';
  const cap = window.caplab;
  const body = document.body;
  if (!cap || !(body.dataset.stores || '').split(',').includes('geo')) return;

  const $ = (id) => document.getElementById(id);
  const DEBOUNCE_MS = 300;
  const firstBox = document.querySelector('.geo-alloc');
  const UNREAD = firstBox ? firstBox.title : ''; // the template's words for a box not read yet
  const MIN_GAP_MS = 1000;
  let from = '';        // region the allocations are seen from
  let timer = 0;
  let lastFetch = 0;
  let inFlight = false;
  let again = false;
  let seq = 0;          // answers older than the newest request are dropped
  let reachSig = '';    // regions up and links cut, last seen

  function sku() {
    const e = $('sku');
    const v = e ? e.value.trim() : '';
    return /^[A-Za-z0-9._-]{1,64}$/.test(v) ? v : (body.dataset.sku || 'IPHONE-15-PRO');
  }
  function cityOf(name) {
    const st = cap.state();
    const r = st && st.regions.find((x) => x.name === name);
    return r ? r.city : name;
  }
  function perspective() {
    const st = cap.state();
    if (!st) return from;
    const up = st.regions.filter((r) => r.up).map((r) => r.name);
    if (from && up.includes(from)) return from;
    return up[0] || (st.regions[0] && st.regions[0].name) || '';
  }

  function cell(region) {
    const shop = $('shop-' + region);
    return shop ? shop.querySelector('.shop-cell.store-geo') : null;
  }
  // Each geo cell holds its allocation box from the start (the page's
  // template): filling it in moves nothing on the stage.
  function box(region) {
    const c = cell(region);
    return c ? c.querySelector('.geo-alloc') : null;
  }

  function render(o) {
    const allocs = o.allocations || {};
    const names = Object.keys(allocs);
    const total = names.reduce((n, r) => n + Math.max(0, allocs[r].quantity || 0), 0);
    for (const r of names) {
      const b = box(r);
      if (!b) continue;
      const a = allocs[r];
      const q = Math.max(0, a.quantity || 0);
      const stranded = !!a.unreachable;
      b.classList.toggle('stranded', stranded && q > 0);
      b.classList.toggle('unreachable', stranded);
      b.dataset.quantity = String(q);
      b.dataset.stranded = String(stranded ? q : 0);
      b.querySelector('.geo-fill').style.width = (total > 0 ? Math.round((q / total) * 100) : 0) + '%';
      const num = b.querySelector('.geo-num');
      num.textContent = !stranded ? q + ' left' : q > 0 ? q + ' stranded' : 'unreachable';
      const seen = cityOf(o.region);
      b.title = stranded
        ? cityOf(r) + ' holds ' + q + ' unit(s) (last seen) that ' + seen + ' cannot reach: stranded while the partition lasts.'
        : cityOf(r) + "'s allocation: " + q + ' unit(s) in its own regional group' + (a.revision ? ' (revision ' + a.revision + ')' : '') + ', seen from ' + seen + '.';
      b.setAttribute('aria-label', b.title);
    }
  }
  // clear blanks every box (a reset, another SKU) until the next answer.
  function clear() {
    document.querySelectorAll('.geo-alloc').forEach((b) => {
      b.classList.remove('stranded', 'unreachable');
      delete b.dataset.quantity;
      delete b.dataset.stranded;
      b.querySelector('.geo-fill').style.width = '0%';
      b.querySelector('.geo-num').textContent = '–';
      b.title = UNREAD;
      b.removeAttribute('aria-label');
    });
  }

  async function refresh() {
    const region = perspective();
    if (!region) return;
    if (inFlight) { again = true; return; }
    inFlight = true;
    lastFetch = Date.now();
    const mine = ++seq;
    const s = sku();
    try {
      const res = await fetch('/api/stores/geo/skus/' + encodeURIComponent(s) + '/allocations?region=' + encodeURIComponent(region), { credentials: 'same-origin' });
      const o = await res.json().catch(() => null);
      if (mine === seq && s === sku() && o && o.allocations) render(o);
    } catch (e) { /* offline: the next event tries again */ }
    inFlight = false;
    if (again) { again = false; schedule(); }
  }
  function schedule() {
    clearTimeout(timer);
    const wait = Math.max(DEBOUNCE_MS, MIN_GAP_MS - (Date.now() - lastFetch));
    timer = setTimeout(refresh, wait);
  }

  cap.on('operation', (f) => {
    const o = f.outcome || f.operation;
    if (!o || o.store !== 'geo') return;
    if (o.sku && o.sku !== sku()) return;
    if (o.op === 'buy' || o.op === 'read') from = o.region;
    schedule();
  });
  cap.on('fault', schedule);
  cap.on('reset', () => { clear(); schedule(); });
  cap.on('state', (f) => {
    const st = f.state;
    if (!st) return;
    const sig = st.regions.map((r) => r.name + (r.up ? '+' : '-')).join(',') + '|' +
      (st.links || []).filter((l) => l.state !== 'up').map((l) => l.from + '>' + l.to).join(',');
    if (sig !== reachSig) { reachSig = sig; schedule(); }
  });
  const skuBox = $('sku');
  if (skuBox) skuBox.addEventListener('change', () => { clear(); schedule(); });
  schedule();
})();
