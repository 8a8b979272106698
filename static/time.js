// Clocks and pauses on the map: each region's clock under its name (from
// the pushed State), and two items on the region's menu: set its clock,
// pause its shop. Self-contained: it remembers which region's menu is open
// and calls the API through window.caplab.
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  let region = null;
  function clockText(c) {
    if (!c || (!c.offsetMs && !c.driftPpm)) return '';
    const s = (c.skewMs >= 0 ? '+' : '') + (c.skewMs / 1000).toFixed(1) + 's';
    return 'clock ' + s + (c.driftPpm ? ' (' + (c.driftPpm > 0 ? '+' : '') + c.driftPpm + ' ppm)' : '');
  }
  function say(msg, isError) {
    const t = $('toast');
    if (!t) return;
    t.textContent = msg;
    t.classList.toggle('error', !!isError);
  }
  function remember(e) {
    const g = e.target.closest && e.target.closest('.region');
    if (g && g.dataset.region) region = g.dataset.region;
  }
  document.addEventListener('click', remember, true);
  document.addEventListener('keydown', remember, true);
  document.addEventListener('contextmenu', remember, true);
  document.addEventListener('click', async (e) => {
    const id = e.target && e.target.id;
    if (!region || !window.caplab || (id !== 'region-menu-clock-apply' && id !== 'region-menu-pause')) return;
    const menu = $('region-menu');
    if (menu) menu.hidden = true;
    if (id === 'region-menu-clock-apply') {
      const s = Number($('region-menu-clock').value);
      const r = await window.caplab.api('POST', '/api/regions/' + region + '/clock', { offsetMs: Math.round(s * 1000), driftPpm: 0 });
      if (r.ok) say(region + "'s clock now reads " + (s >= 0 ? '+' : '') + s + ' s from true time.');
      return;
    }
    const r = await window.caplab.api('POST', '/api/regions/' + region + '/pause', { seconds: 8 });
    if (r.ok) say(region + "'s shop is frozen for 8 s: its requests stop mid-flight.");
  });
  function render(st) {
    if (!st || !st.regions) return;
    for (const r of st.regions) {
      const el = $('region-' + r.name + '-clock');
      if (el) el.textContent = clockText(r.clock);
    }
  }
  function hook() {
    if (!window.caplab) return setTimeout(hook, 50);
    window.caplab.on('state', render);
    render(window.caplab.state());
  }
  hook();
})();
