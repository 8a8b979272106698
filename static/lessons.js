// caplab lesson panel: every page follows the shared lesson session (lesson
// and poll frames); the presenter drives it through the API. Our own small
// script, no dependencies; it uses the page's client through window.caplab
// (static/app.js, loaded first).
(() => {
  'use strict';

  const body = document.body;
  if (body.dataset.lessons !== 'true' || !window.caplab) return;
  const caplab = window.caplab;
  const $ = (id) => document.getElementById(id);
  const { api, busy, toast, selectTab, presenter } = caplab;
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
    body.classList.toggle('lesson-open', !!cur);
    if ($('lesson-name')) $('lesson-name').textContent = cur ? cur.title + (cur.minutes ? ' · ~' + cur.minutes + ' min' : '') : '';
    const handout = $('lesson-handout');
    if (handout) { handout.hidden = !cur; if (cur) handout.href = '/api/lessons/' + encodeURIComponent(cur.id) + '/handout'; }
    $('lesson-progress').textContent = cur ? 'Step ' + (cur.step + 1) + ' of ' + cur.steps : '';
    const list = $('lesson-steps');
    list.textContent = '';
    const box = $('lesson-step');
    const cmds = $('lesson-commands');
    cmds.textContent = '';
    const effects = $('lesson-effects');
    effects.textContent = '';
    const status = $('lesson-status');
    const notes = $('lesson-notes');
    if (!cur) {
      box.textContent = '';
      box.appendChild(el('p', '', presenter ? 'Pick a lesson: everyone watching follows you step by step. A step with a question lets the audience vote before you run it.' : 'The presenter has not opened a lesson; watch the map and the shops.'));
      status.textContent = '';
      if (notes) notes.hidden = true;
      $('lesson-details').hidden = true;
      for (const id of ['lesson-prev', 'lesson-next', 'lesson-run']) if ($(id)) $(id).disabled = true;
      return;
    }
    $('lesson-details').hidden = false;
    cur.stepTitles.forEach((title, i) => {
      const li = el('li', i === cur.step ? 'current' : '', title);
      li.title = title;
      if (i === cur.step) li.setAttribute('aria-current', 'step');
      list.appendChild(li);
    });
    box.textContent = '';
    box.appendChild(el('h3', '', cur.stepTitle));
    const prose = el('div', 'prose');
    prose.innerHTML = cur.html || ''; // trusted: rendered by the lessons provider (no raw HTML)
    box.appendChild(prose);
    if (notes) {
      notes.hidden = !cur.revealHtml;
      $('lesson-notes-body').innerHTML = cur.revealHtml || ''; // trusted, as above
    }
    // details: the raw commands; an expectation is held back until the
    // step ran (viewers get it blanked; the projector hides it too)
    const held = cur.held || [];
    const results = cur.results.filter((r) => !r.woke); // a paused shop's late outcome is a story line, not a command
    cur.commands.forEach((c, i) => {
      const r = results[i];
      const st = r ? r.status : (cur.running && i === results.length ? 'running' : 'pending');
      const li = el('li', 'cmd s-' + st + (held[i] && !r ? ' held' : ''));
      li.id = 'lesson-command-' + i;
      li.dataset.testid = 'lesson-command-' + i;
      li.dataset.status = st;
      li.appendChild(el('span', 'icon', r ? statusIcon[r.status] || '•' : st === 'running' ? '…' : '○')).setAttribute('aria-hidden', 'true');
      li.appendChild(el('span', 'sr-only', (r ? statusWord[r.status] || r.status : st === 'running' ? 'running' : 'not run yet') + ': '));
      const hide = held[i] && !r && body.classList.contains('present');
      li.appendChild(el('code', '', hide ? 'expect … (shown once the step has run)' : r ? r.command : c));
      if (held[i] && !r && presenter && !hide) li.appendChild(el('span', 'held-note', 'hidden from the audience until the step runs'));
      if (r && r.line) li.appendChild(el('span', 'what', 'line ' + r.line + (r.text ? ': ' + r.text.replace(/^line \d+: /, '') : '')));
      cmds.appendChild(li);
    });
    // the story: one line per visible effect, expectations marked
    for (const r of cur.results) {
      if (!r.story) continue;
      const expectation = r.status === 'passed' || r.status === 'failed';
      const li = el('li', r.status === 'failed' || r.status === 'error' ? 'missed' : expectation ? 'met' : '');
      li.appendChild(el('span', 'mark', r.status === 'passed' ? '✓' : r.status === 'failed' || r.status === 'error' ? '✗' : '·')).setAttribute('aria-hidden', 'true');
      li.appendChild(document.createTextNode(r.story));
      if (expectation) li.appendChild(el('span', 'verdict-word', r.status === 'passed' ? 'as expected' : 'not as expected'));
      if (r.at) { // its moment, shown again on the stage (replay.js)
        const b = el('button', 'story-moment', '⏱');
        b.type = 'button';
        b.dataset.action = 'show-moment';
        b.dataset.at = r.at;
        b.title = 'Show the lab as this line left it';
        b.setAttribute('aria-label', 'Show the lab as this line left it');
        li.appendChild(b);
      }
      effects.appendChild(li);
    }
    renderCaption();
    if (cur.running) status.textContent = 'Running step ' + (cur.step + 1) + '…';
    else if (cur.ran) status.textContent = (cur.failed ? '✗ ' : '✓ ') + (cur.report || 'Done.');
    else if (poll && !poll.revealed) status.textContent = presenter ? 'The audience is voting: reveal the answer (v) or run the step (n).' : 'Vote, then watch the lab.';
    else status.textContent = presenter && canRun ? 'Run the step when you are ready (key n).' : 'Waiting for the presenter to run this step.';
    status.className = 'lesson-status' + (cur.ran ? (cur.failed ? ' bad' : ' good') : '');
    if ($('lesson-prev')) $('lesson-prev').disabled = cur.running || cur.step === 0;
    if ($('lesson-next')) $('lesson-next').disabled = cur.running || cur.step >= cur.steps - 1;
    if ($('lesson-run')) $('lesson-run').disabled = cur.running;
  }

  // Captions on the stage: the step's newest story lines, as they happen.
  function renderCaption() {
    const lines = cur ? cur.results.map((r) => r.story).filter(Boolean) : [];
    caplab.caption(lines.slice(-2), 'lesson');
  }
  // story mode: the page's product follows the lesson's, and each answer
  // in the shops names the step it belongs to
  let followed = '';
  function followLesson() {
    if (!cur) { followed = ''; return; }
    if (cur.product && cur.product !== followed) {
      followed = cur.product;
      caplab.setProduct(cur.product);
    }
  }
  caplab.setStepOf((t) => {
    if (!cur || !cur.spans || !t) return '';
    // the latest run that began at or before t and had not ended
    let best = null;
    for (const sp of cur.spans) {
      const from = Math.floor(Date.parse(sp.from)), to = sp.to ? Date.parse(sp.to) + 1 : Infinity;
      if (t >= from && t <= to && (!best || from > best.from)) best = { from, step: sp.step };
    }
    return best ? 'step ' + (best.step + 1) : '';
  });

  function renderPoll() {
    const card = $('poll');
    const k = keyOf(poll);
    if (k !== pollKey) { pollKey = k; myVote = ''; }
    body.classList.toggle('poll-open', !!poll); // a phone keeps the question (and then its answer) first
    body.classList.toggle('poll-voting', !!poll && !poll.revealed); // verdicts that would give the answer away wait
    if (!poll) { card.hidden = true; return; }
    card.hidden = false;
    card.classList.toggle('revealed', !!poll.revealed);
    const label = (o) => { const i = poll.options.indexOf(o); return (poll.labels && poll.labels[i]) || o; };
    $('poll-kicker').textContent = (poll.count > 1 ? 'Question ' + (poll.index + 1) + ' of ' + poll.count + ' · ' : '') +
      (poll.revealed ? 'The answer is out' : 'Predict before the lab shows it');
    $('poll-question').textContent = poll.question;
    // The buttons are updated in place while the question stays the same:
    // a frame (another viewer's vote, a viewer joining) that replaced them
    // between a finger's press and release would swallow the tap.
    const opts = $('poll-options');
    const same = opts.dataset.key === k && opts.children.length === poll.options.length &&
      poll.options.every((o, i) => opts.children[i].dataset.option === o);
    if (!same) {
      opts.textContent = '';
      opts.dataset.key = k;
      poll.options.forEach((o, i) => {
        const b = el('button', 'btn poll-option');
        b.type = 'button';
        b.id = 'poll-option-' + i;
        b.dataset.testid = 'poll-option-' + i;
        b.dataset.option = o;
        opts.appendChild(b);
      });
    }
    poll.options.forEach((o, i) => {
      const b = opts.children[i];
      const right = poll.revealed && o === poll.answer;
      const text = (right ? '✓ ' : o === myVote ? '● ' : '') + label(o);
      if (b.textContent !== text) b.textContent = text;
      b.setAttribute('aria-pressed', String(o === myVote));
      b.classList.toggle('chosen', o === myVote);
      b.classList.toggle('correct', right);
      b.disabled = poll.revealed;
    });
    const tally = $('poll-tally');
    tally.textContent = '';
    if (poll.tally) {
      const ul = el('ul', 'tally');
      poll.options.forEach((o, i) => {
        const n = poll.tally[i] || 0, pct = poll.votes ? Math.round(100 * n / poll.votes) : 0;
        const li = el('li', poll.revealed && o === poll.answer ? 'correct' : '');
        li.appendChild(el('span', 'opt', (poll.revealed && o === poll.answer ? '✓ ' : '') + label(o)));
        const bar = el('span', 'bar');
        bar.style.width = pct + '%';
        bar.setAttribute('aria-hidden', 'true');
        li.appendChild(bar);
        li.appendChild(el('span', 'n', n + (n === 1 ? ' vote' : ' votes') + ' (' + pct + '%)'));
        ul.appendChild(li);
      });
      tally.appendChild(ul);
    }
    const hidden = !poll.revealed && (!poll.tally || body.classList.contains('present'));
    const from = poll.viewers ? ' from ' + poll.viewers + (poll.viewers === 1 ? ' connected viewer' : ' connected viewers') : '';
    tally.appendChild(el('p', 'hint', poll.votes + (poll.votes === 1 ? ' vote' : ' votes') + from + (hidden ? (presenter ? ' so far' : ' so far — the tally shows when the presenter reveals the answer.') : '')));
    const ans = $('poll-answer');
    ans.hidden = !poll.revealed;
    ans.textContent = '';
    if (poll.revealed) {
      let s = 'Answer: ' + (poll.answerLabel || label(poll.answer)) + '.';
      if (myVote) s += myVote === poll.answer ? ' ✓ You predicted it.' : ' ✗ You said ' + label(myVote) + '.';
      ans.textContent = s;
    }
    if ($('poll-reveal')) $('poll-reveal').hidden = poll.revealed;
    if ($('poll-next')) $('poll-next').hidden = !(poll.revealed && poll.index + 1 < poll.count);
    $('poll-status').textContent = poll.revealed ? '' : myVote ? 'Your vote: ' + label(myVote) + '. You can change it until the reveal.' : presenter ? '' : 'Tap an option to vote.';
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
      case 'poll-reveal': return api('POST', '/api/poll/reveal', {}).then(pollAnswer);
      case 'poll-next': return api('POST', '/api/poll/next', {}).then(pollAnswer);
    }
  });
  // g (or the New group button): the next group starts afresh
  async function newGroup(btn) {
    if (!presenter) return;
    const r = await busy(btn, () => api('POST', '/api/class/reset', {}));
    if (r.ok) toast('A new group: the lab is fresh, the votes and the recording cleared' + (cur ? ', back at step 1 of ' + cur.title : '') + '.');
  }
  document.addEventListener('click', (e) => {
    const t = e.target.closest('#group-reset');
    if (t && !t.disabled) newGroup(t);
  });
  caplab.on('group-reset', () => newGroup($('group-reset')));
  caplab.on('lesson-next', advance);
  // The presenter's page takes the poll from the answer at once (its poll
  // frame may come later): v then q in quick succession both work.
  const pollAnswer = (r) => { if (r.ok && r.data && r.data.poll) { poll = r.data.poll; renderPoll(); renderLesson(); } };
  caplab.on('lesson-reveal', () => { if (presenter && poll && !poll.revealed) api('POST', '/api/poll/reveal', {}).then(pollAnswer); });
  caplab.on('lesson-question', () => {
    if (!presenter || !poll) return;
    if (!poll.revealed) { toast('Reveal this answer first (v), then go on to the next question (q).'); return; }
    if (poll.index + 1 >= poll.count) { toast('This step asks no further question: n runs it or goes on.'); return; }
    api('POST', '/api/poll/next', {}).then(pollAnswer);
  });
  caplab.on('lesson-back', () => { if (presenter && cur && !cur.running && cur.step > 0) setLesson(cur.id, cur.step - 1); });
  // a lesson opening (or moving on) brings its tab forward
  let shownKey = '';
  const showLessonTab = () => { const k = cur ? cur.id + '/' + cur.step : ''; if (k && k !== shownKey) { shownKey = k; selectTab('lesson'); } };
  caplab.on('lesson', (f) => { framed = true; cur = f.lesson || null; renderLesson(); showLessonTab(); followLesson(); });
  caplab.on('poll', (f) => { poll = f.poll || null; renderPoll(); renderLesson(); });
  caplab.on('present', () => { renderPoll(); renderLesson(); });
  // This browser's vote survives a reload: the server knows it by cookie.
  api('GET', '/api/lesson').then((r) => {
    if (!r.ok || !r.data) return;
    if (!framed) { cur = r.data.lesson || null; poll = r.data.poll || null; }
    if (r.data.poll && keyOf(r.data.poll) === keyOf(poll)) { pollKey = keyOf(poll); myVote = r.data.vote || ''; }
    renderPoll(); renderLesson(); showLessonTab(); followLesson();
    if (cur && cur.spans && cur.spans.length) caplab.redrawOutcomes(); // name the steps of what the history showed
  });
})();
