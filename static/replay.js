// Going back in time (web/doc.go "Scrub back and replay"): the slider
// under the timeline shows the map and the shops as they were at any
// moment since the last reset (GET /api/state?at=T) while it is dragged,
// and live again when it is let go; a click on a timeline bar, a fault or
// an anomaly card's button shows its moment until "Back to live". A
// replay plays the class again (GET /api/replay/steps) at 1× or 4× with
// the story's captions — the same sentences as live (lab.Say, SayFault).
// The presenter's "replay the last 2 minutes at 4×" reaches every page as
// a sticky "replay" frame on /ws (POST /api/replay); each page plays it in
// step with the server's clock. Self-contained: it draws through
// window.caplab (showPast, pastNetwork, pastAt, goLive, caption).
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const presenter = document.body.dataset.role === 'presenter';

  // The window that can be shown again: from the last reset to the
  // server's now; offsetMs is the server's clock minus this page's.
  let win = { from: '', fromMs: NaN, offsetMs: 0 };
  const serverNow = () => Date.now() + win.offsetMs;
  async function loadWindow() {
    const t0 = Date.now();
    const res = await fetch('/api/replay', { credentials: 'same-origin' }).catch(() => null);
    const j = res && res.ok ? await res.json().catch(() => null) : null;
    if (!j || !j.window) return null;
    win = { from: j.window.from, fromMs: Date.parse(j.window.from), offsetMs: Date.parse(j.window.to) - (t0 + Date.now()) / 2 };
    return j;
  }

  // mode: 'live'; 'drag' (the slider is held); 'pinned' (a moment stays
  // until Back to live); 'replay'. gen changes with every mode change, so a
  // late answer of an earlier one is dropped.
  let mode = 'live', gen = 0;
  function setMode(m) { mode = m; gen++; }
  function say(msg, isError) { if (window.caplab) window.caplab.toast(msg, isError); }
  function clock(ms) {
    const d = new Date(ms);
    return d.toLocaleTimeString() + '.' + String(d.getMilliseconds()).padStart(3, '0');
  }
  // recorded: the window the last moment came with (recordedUntil: the
  // History's caps left what followed out; asRecorded: what is approximate).
  let recorded = null;
  function tell(ms) {
    const when = $('scrub-when'), banner = $('past-banner'), live = $('scrub-live');
    if (ms === null) {
      if (when) when.textContent = 'live';
      if (banner) banner.hidden = true;
      if (live) live.hidden = true;
      return;
    }
    const ago = Math.max(0, (serverNow() - ms) / 1000);
    const text = clock(ms) + ' — ' + (ago < 60 ? ago.toFixed(1) + ' s' : Math.round(ago / 60) + ' min') + ' ago';
    if (when) when.textContent = text;
    const pw = $('past-when');
    let cut = '';
    if (recorded && recorded.recordedUntil && ms > Date.parse(recorded.recordedUntil)) cut = ' — the History is full: nothing after ' + clock(Date.parse(recorded.recordedUntil)) + ' was recorded';
    if (pw) {
      pw.textContent = (mode === 'replay' ? 'Replay' + (replay ? ' ' + replay.speed + '×' : '') + ': ' : 'As it was at ') + text + ' (as recorded)' + cut;
      pw.title = recorded && recorded.asRecorded ? recorded.asRecorded.join(' ') : '';
    }
    if (banner) banner.hidden = false;
    if (live) live.hidden = false;
  }

  // ---------- a moment
  // show asks for the moment at ms (or the RFC 3339 time at) and shows
  // it, one request at a time: while one is on its way only the newest
  // wish waits.
  let wish = null, asking = false;
  async function show(at) {
    wish = at;
    if (asking) return;
    asking = true;
    try {
      while (wish !== null) {
        const w = wish, g = gen;
        wish = null;
        // in ms, past the reset's (finer) time and not after the server's now
        const iso = typeof w === 'number' ? new Date(Math.max(win.fromMs + 1, Math.min(w, serverNow() - 1))).toISOString() : w;
        const res = await fetch('/api/state?at=' + encodeURIComponent(iso), { credentials: 'same-origin' }).catch(() => null);
        const m = res ? await res.json().catch(() => null) : null;
        if (g !== gen || mode === 'live' || mode === 'replay') continue; // let go, or another mode, meanwhile
        if (!m || m.error) {
          if (m && m.error) say(m.error, true);
          if (m && m.replay === undefined) await loadWindow(); // the window moved (a reset)
          continue;
        }
        window.caplab.showPast(m);
        recorded = m.replay || null;
        tell(Date.parse(m.at));
      }
    } finally { asking = false; }
  }
  function live() {
    if (mode === 'replay' && replay) stopReplay(false);
    setMode('live');
    const r = $('scrub-range');
    if (r) r.value = r.max;
    tell(null);
    if (window.caplab.isPast()) window.caplab.goLive();
    window.caplab.endCaption('replay');
  }
  // pin shows a moment until Back to live (a bar, a fault, a card).
  function pin(at) {
    if (mode === 'replay') stopReplay(false);
    setMode('pinned');
    show(at);
  }

  // ---------- the slider: its value is milliseconds since the last reset,
  // its end now (set when it is taken).
  const range = $('scrub-range');
  async function takeRange() {
    if (!(win.fromMs > 0)) await loadWindow();
    const span = Math.max(1, Math.round(serverNow() - win.fromMs));
    range.max = String(span);
    if (mode !== 'drag' && mode !== 'pinned') range.value = String(span);
  }
  function rangeMs() { return win.fromMs + Number(range.value); }
  if (range) {
    range.addEventListener('pointerdown', () => {
      if (mode === 'replay') stopReplay(false);
      setMode('drag');
      takeRange();
    });
    range.addEventListener('input', () => {
      if (mode === 'live' || mode === 'replay') { setMode('pinned'); takeRange(); } // the keyboard: the moment stays
      if (!(win.fromMs > 0)) return;
      show(rangeMs());
    });
    // Let go (wherever the pointer is then): live again.
    const release = () => { if (mode === 'drag') live(); };
    document.addEventListener('pointerup', release);
    document.addEventListener('pointercancel', release);
    range.addEventListener('change', release);
    range.addEventListener('keydown', (e) => { if (e.key === 'Escape') live(); });
  }

  // ---------- replays
  // replay: {id (class replay id, 0 local), fromMs, toMs, speed, t0
  // (performance.now() at elapsed 0), steps, next, lines}
  let replay = null;
  // play fetches the stretch from → to (RFC 3339, as the server wrote
  // them) and plays it at speed×, elapsedMs (of the stretch) in.
  async function play(from, to, speed, elapsedMs, id) {
    if (replay) stopReplay(false);
    setMode('replay');
    const g = gen;
    const fromMs = Date.parse(from), toMs = Date.parse(to);
    const q = 'from=' + encodeURIComponent(from) + '&to=' + encodeURIComponent(to);
    const res = await fetch('/api/replay/steps?' + q, { credentials: 'same-origin' }).catch(() => null);
    const j = res ? await res.json().catch(() => null) : null;
    if (g !== gen) return;
    if (!j || j.error) { say(j && j.error ? j.error : 'The replay could not be loaded.', true); setMode('live'); return; }
    const steps = (j.steps || []).map((s) => Object.assign(s, { atMs: Date.parse(s.at) }));
    replay = { id, fromMs, toMs: j.until ? Date.parse(j.until) : toMs, speed, steps, next: 0, lines: [], t0: performance.now() - elapsedMs / speed };
    document.body.classList.add('replaying');
    window.caplab.showPast(j.start);
    recorded = j.start.replay || null;
    window.caplab.caption(['Replay at ' + speed + '× from ' + clock(fromMs) + '.'], 'replay');
    tick();
  }
  function tick() {
    const r = replay;
    if (!r || mode !== 'replay') return;
    const t = r.fromMs + (performance.now() - r.t0) * r.speed;
    let said = false;
    while (r.next < r.steps.length && r.steps[r.next].atMs <= t) {
      const s = r.steps[r.next++];
      if (s.fault && s.state) window.caplab.pastNetwork(s.state);
      if (s.operation) window.caplab.showPastOutcome(s.operation);
      if (s.caption) { r.lines.push(clock(s.atMs) + ' ' + s.caption); said = true; }
    }
    if (said) window.caplab.caption(r.lines.slice(-3), 'replay');
    const now = Math.min(t, r.toMs);
    window.caplab.pastAt(now);
    tell(now);
    if (t >= r.toMs) { stopReplay(true); return; }
    r.raf = requestAnimationFrame(tick);
  }
  // stopReplay ends the replay on this page; at its end, live again.
  function stopReplay(toLive) {
    if (replay && replay.raf) cancelAnimationFrame(replay.raf);
    replay = null;
    document.body.classList.remove('replaying');
    if (toLive) live();
  }
  async function playLocal(speed) {
    await loadWindow();
    if (!(win.fromMs > 0)) return;
    play(win.from, new Date(serverNow() - 1).toISOString(), speed, 0, 0);
  }
  // A class replay from the server: play it in step with the server's
  // clock; null (stopped) or played out: live.
  async function followClass(c) {
    if (!c) { if (replay && replay.id) live(); return; }
    await loadWindow();
    const fromMs = Date.parse(c.from), toMs = Date.parse(c.to);
    const elapsed = serverNow() - Date.parse(c.startedAt);
    if (fromMs < win.fromMs || elapsed * c.speed >= toMs - fromMs) return; // a reset since, or over
    if (replay && replay.id === c.id) return;
    play(c.from, c.to, c.speed, Math.max(0, elapsed * c.speed), c.id);
  }

  // ---------- clicks
  document.addEventListener('click', async (e) => {
    const t = e.target && e.target.closest ? e.target.closest('button, .seek') : null;
    if (!t) return;
    if (t.id === 'scrub-live' || t.id === 'past-live') {
      if (presenter && replay && replay.id) await window.caplab.api('DELETE', '/api/replay', {});
      live();
      return;
    }
    if (t.id === 'replay-1x' || t.id === 'replay-4x') return playLocal(Number(t.dataset.speed));
    if (t.id === 'replay-class') {
      const r = await window.caplab.api('POST', '/api/replay', { seconds: 120, speed: 4 });
      if (r.ok) say('Every page replays the last 2 minutes at 4×.');
      return;
    }
    if (t.dataset.action === 'show-moment' && t.dataset.at) return pin(t.dataset.at);
    if (t.dataset.action === 'show-anomaly') {
      const tab = $('tab-checker');
      if (tab) tab.click();
      const card = $('anomaly-' + t.dataset.store);
      if (card) card.scrollIntoView({ block: 'nearest' });
      return;
    }
    if (t.classList.contains('seek') && t.dataset.at) pin(t.dataset.at);
  });

  function hook() {
    if (!window.caplab) return setTimeout(hook, 50);
    const c = window.caplab;
    c.on('live', () => { if (mode !== 'live') { if (replay) stopReplay(false); setMode('live'); tell(null); c.endCaption('replay'); if (range) range.value = range.max; } });
    c.on('reset', () => { win.fromMs = NaN; loadWindow(); });
    c.on('replay', (f) => followClass(f.replay));
    loadWindow().then((j) => { if (j && j.replay) followClass(j.replay); });
    window.caplab.replay = { mode: () => mode, window: () => ({ fromMs: win.fromMs, nowMs: serverNow() }) };
  }
  hook();
})();
