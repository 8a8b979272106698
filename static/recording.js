// "Save as lesson": downloads the lab's recording (GET /api/recording/lesson)
// as a Markdown file. Only the presenter's page has the button and the red
// recording dot; the audience sees neither.
(() => {
  'use strict';
  const btn = document.getElementById('save-lesson');
  const dot = document.getElementById('rec-dot');
  if (!btn) return;
  function say(msg, isError) {
    const t = document.getElementById('toast');
    if (!t) return;
    t.textContent = msg;
    t.classList.toggle('error', !!isError);
  }
  async function status() {
    try {
      const res = await fetch('/api/recording', { credentials: 'same-origin' });
      const s = await res.json();
      if (dot && s.message) {
        dot.title = s.message;
        dot.classList.toggle('full', s.dropped > 0);
      }
      return s;
    } catch (e) { return null; }
  }
  btn.addEventListener('click', async () => {
    let res;
    try {
      res = await fetch('/api/recording/lesson', { credentials: 'same-origin' });
    } catch (e) {
      say('The lab did not answer: ' + e.message, true);
      return;
    }
    if (!res.ok) {
      const data = await res.json().catch(() => null);
      say((data && data.error) || ('The lab answered ' + res.status + '.'), true);
      return;
    }
    const blob = await res.blob();
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = 'recorded-lesson.md';
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    const s = await status();
    say(s && s.dropped > 0 ? s.message : 'Saved the recording as recorded-lesson.md. Check it with: caplab lessons check recorded-lesson.md');
  });
  const start = document.getElementById('start-recording');
  if (start) start.addEventListener('click', async () => {
    try {
      const res = await fetch('/api/recording/start', { method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' }, body: '{}' });
      say(res.ok ? 'Recording from now on; what was recorded before is forgotten.' : 'The lab refused to start recording (' + res.status + ').', !res.ok);
    } catch (e) { say('The lab did not answer: ' + e.message, true); }
    status();
  });
  if (dot) dot.addEventListener('mouseenter', status);
})();
