// The Doppel web console's behaviour: plain JavaScript, no dependency, served at /console.js.
// Everything the API returns is put on the page as text (textContent, attributes), never
// parsed as HTML.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const state = {
    key: sessionStorage.getItem('doppel.key') || '',
    files: { a: null, b: null, search: null },
    pages: [null], page: 0, next: null, prefix: '',
    thumbs: new Map(), model: null, isAdmin: false,
  };

  // ---- helpers -------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === 'class') node.className = value;
      else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }
  const fmt = (x, digits = 3) => (typeof x === 'number' ? x.toFixed(digits) : '–');
  const pct = (x) => (typeof x === 'number' ? (x * 100).toFixed(x < 0.01 ? 2 : 1) + '%' : 'unknown');
  let statusTimer = null;
  function status(text) {
    const box = $('status');
    box.textContent = text;
    box.classList.add('shown');
    clearTimeout(statusTimer);
    statusTimer = setTimeout(() => box.classList.remove('shown'), 3000);
  }
  function gallery() { return $('gallery-name').value.trim() || 'default'; }
  function identityPath(id) { return '/v1/identities/' + encodeURIComponent(id); }

  class APIError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }
  async function api(method, path, body) {
    const headers = new Headers();
    if (state.key) headers.set('Authorization', 'Bearer ' + state.key);
    let response;
    try {
      response = await fetch(path, { method, headers, body, cache: 'no-store' });
    } catch (e) {
      throw new APIError(0, 'network', 'the server cannot be reached (' + e.message + ')');
    }
    const type = response.headers.get('Content-Type') || '';
    if (!response.ok) {
      let code = 'http_' + response.status, message = response.statusText;
      if (type.includes('json')) {
        const data = await response.json().catch(() => ({}));
        if (data.error) { code = data.error.code || code; message = data.error.message || message; }
      }
      throw new APIError(response.status, code, message);
    }
    return type.includes('json') ? response.json() : response.blob();
  }
  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== '') q.set(k, v);
    const text = q.toString();
    return text ? '?' + text : '';
  }
  function showError(target, error) {
    target.hidden = false;
    target.replaceChildren(el('p', { class: 'error' }, describe(error)));
  }
  function describe(error) {
    if (error.status === 401) return 'This needs a key: type an API key above (' + error.message + ').';
    if (error.status === 403) return 'This key is not allowed to do that: the gallery needs the admin key (' + error.message + ').';
    return error.message + (error.code ? ' [' + error.code + ']' : '');
  }

  // A sample's thumbnail as an object URL (admin only; cached per sample).
  async function thumbnail(id, sample, side = 160) {
    const key = gallery() + '/' + id + '/' + sample + '/' + side;
    if (!state.thumbs.has(key)) {
      const blob = await api('GET', identityPath(id) + '/samples/' + sample + '/image' + query({ max_side: side, gallery: gallery() }));
      state.thumbs.set(key, URL.createObjectURL(blob));
    }
    return state.thumbs.get(key);
  }
  function fillThumb(img, id, sample, side) {
    if (!state.isAdmin || !sample) return;  // an empty frame: thumbnails need the admin key
    thumbnail(id, sample, side).then((url) => { img.src = url; }).catch(() => { img.title = 'no preview'; });
  }

  // ---- drop zones ----------------------------------------------------------------------
  function dropZone(zone, slot, onChange) {
    const input = zone.querySelector('input');
    const img = zone.querySelector('img');
    const caption = zone.querySelector('span');
    function use(file) {
      if (!file) return;
      state.files[slot] = file;
      if (img.src) URL.revokeObjectURL(img.src);
      img.onerror = () => { img.removeAttribute('src'); caption.textContent = file.name + ' (no preview in this browser)'; };
      img.src = URL.createObjectURL(file);
      caption.textContent = file.name;
      onChange();
    }
    input.addEventListener('change', () => use(input.files[0]));
    zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
    zone.addEventListener('dragleave', () => zone.classList.remove('over'));
    zone.addEventListener('drop', (e) => {
      e.preventDefault();
      zone.classList.remove('over');
      use(e.dataTransfer.files[0]);
    });
  }

  // ---- verify --------------------------------------------------------------------------
  function distanceBar(distance, threshold) {
    const top = Math.max(distance, threshold) * 1.25 || 1;
    const at = (x) => Math.min(100, (x / top) * 100) + '%';
    const bar = el('div', { class: 'bar' },
      el('div', { class: 'mark threshold' }), el('div', { class: 'label' }, 'threshold ' + fmt(threshold)),
      el('div', { class: 'mark' }), el('div', { class: 'label' }, 'distance ' + fmt(distance)));
    bar.style.setProperty('--t', at(threshold));
    const [tMark, tLabel, dMark, dLabel] = bar.children;
    tMark.style.left = at(threshold); tLabel.style.left = at(threshold);
    dMark.style.left = at(distance); dLabel.style.left = at(distance);
    dLabel.style.top = '-22px';
    return bar;
  }
  // ---- faces ---------------------------------------------------------------------------
  // A face model answers per face: the photo with each face's box drawn over it (numbered
  // from 1, the largest first), the chosen one highlighted; clicking a box picks it.
  function facePhoto(file, faces, chosen, onPick) {
    const img = el('img', { alt: '' });
    const frame = el('div', { class: 'faces' }, img);
    img.addEventListener('load', () => {
      const w = img.naturalWidth, h = img.naturalHeight;
      for (const f of faces) {
        const b = f.box;
        const box = el('button', { type: 'button', class: 'facebox' + (f.face === chosen ? ' chosen' : ''), 'data-face': f.face,
          title: 'face ' + (f.face + 1) + (f.confidence === null ? ' (your box)' : ', detector score ' + fmt(f.confidence, 2)) }, String(f.face + 1));
        box.style.left = (100 * b.left / w) + '%'; box.style.top = (100 * b.top / h) + '%';
        box.style.width = (100 * (b.right - b.left + 1) / w) + '%'; box.style.height = (100 * (b.bottom - b.top + 1) / h) + '%';
        if (onPick) box.addEventListener('click', () => onPick(f.face));
        frame.append(box);
      }
    }, { once: true });
    img.src = URL.createObjectURL(file);
    return frame;
  }
  function faceSummary(label, image) {
    return label + ': ' + image.found + (image.found === 1 ? ' face' : ' faces') + ' found, ' +
      (image.found === 1 ? 'compared' : 'face ' + (image.used + 1) + (image.used === 0 ? ' (the largest)' : '') + ' compared');
  }
  function isFaceModel() { return !!(state.model && state.model.input_spec && state.model.input_spec.face); }

  async function runVerify(pick = {}) {
    const out = $('verify-result');
    const form = new FormData();
    form.append('image1', state.files.a);
    form.append('image2', state.files.b);
    for (const [field, face] of Object.entries(pick)) form.append(field, String(face));
    $('verify-run').disabled = true;
    try {
      const r = await api('POST', '/v1/verify', form);
      out.hidden = false;
      const faces = r.images ? el('div', null,
        el('div', { class: 'pair' },
          facePhoto(state.files.a, r.images[0].faces, r.images[0].used, (i) => runVerify({ face1: i, face2: r.images[1].used })),
          facePhoto(state.files.b, r.images[1].faces, r.images[1].used, (i) => runVerify({ face1: r.images[0].used, face2: i }))),
        el('p', { class: 'muted' }, faceSummary('Image 1', r.images[0]) + '; ' + faceSummary('image 2', r.images[1]) + '. Click a box to compare another face.')) : null;
      out.replaceChildren(
        el('div', { class: 'verdict ' + (r.match ? 'yes' : 'no') }, r.match ? 'Match: the same identity' : 'No match: different identities'),
        distanceBar(r.distance, r.threshold),
        el('p', null, 'Distance ' + fmt(r.distance) + (r.match ? ' is within' : ' is beyond') + ' the threshold ' + fmt(r.threshold) +
          '. Similarity ' + pct(r.similarity) + '.'),
        // A model calibrated without a false accept curve (an imported one) has no estimate to give.
        r.far === null ? null : el('p', { class: 'muted' }, 'At this threshold about ' + pct(r.far) + ' of pairs of different identities would also match (the estimated false accept rate).'),
        faces);
    } catch (e) { showError(out, e); }
    $('verify-run').disabled = false;
  }

  // ---- search --------------------------------------------------------------------------
  function explain(r) {
    const best = r.matches[0];
    if (r.decision === 'match') return 'Recognised as “' + best.identity + '”: distance ' + fmt(best.distance) + ' is within the threshold ' + fmt(r.threshold) + ', and no other identity is within ' + fmt(r.margin, 2) + ' of it.';
    if (r.decision === 'ambiguous') return 'Ambiguous: “' + best.identity + '” and “' + r.matches[1].identity + '” are both within the threshold and less than ' + fmt(r.margin, 2) + ' apart, too close to call.';
    if (!best) return 'The gallery is empty: enroll identities first.';
    return 'Unknown: no enrolled identity is within the threshold ' + fmt(r.threshold) + ' (the nearest, “' + best.identity + '”, is at ' + fmt(best.distance) + '). This looks like someone not in the gallery.';
  }
  // One answer's verdict, explanation and matches (the image's, or one face's).
  function searchAnswer(r) {
    const list = el('ol', { class: 'matches' });
    for (const m of r.matches) {
      // Without the admin key there is no photo to show: no empty frame either.
      let img = null;
      if (state.isAdmin) {
        img = el('img', { class: 'thumb', alt: '' });
        fillThumb(img, m.identity, m.sample, 128);
      }
      list.append(el('li', { class: m.match ? 'match' : '' }, img,
        el('div', null, el('strong', null, m.identity), el('div', { class: 'muted' },
          'distance ' + fmt(m.distance) + ' · similarity ' + pct(m.similarity) + (m.match ? ' · within the threshold' : '')))));
    }
    return [
      el('div', { class: 'verdict ' + (r.decision === 'match' ? 'yes' : r.decision === 'ambiguous' ? 'maybe' : 'no') }, r.decision),
      el('p', null, explain(r)),
      state.isAdmin ? null : el('p', { class: 'muted' }, 'Type the admin key above to see the matching photos.'),
      list];
  }
  async function runSearch() {
    const out = $('search-result');
    const form = new FormData();
    form.append('image', state.files.search);
    $('search-run').disabled = true;
    try {
      const r = await api('POST', '/v1/search' + query({ k: $('search-k').value, gallery: gallery() }), form);
      out.hidden = false;
      if (!r.faces) {
        out.replaceChildren(...searchAnswer(r));
      } else {
        // One card per face; the chosen face's matches below, the largest first.
        const detail = el('div', { id: 'face-detail' });
        const cards = el('ol', { class: 'facecards' });
        const photo = facePhoto(state.files.search, r.faces, 0, (i) => choose(i));
        function choose(i) {
          for (const node of [...cards.children, ...photo.querySelectorAll('.facebox')]) node.classList.toggle('chosen', Number(node.dataset.face) === i);
          const face = r.faces.find((f) => f.face === i);
          detail.replaceChildren(el('h3', null, 'Face ' + (i + 1)), ...searchAnswer({ ...r, ...face }));
        }
        for (const f of r.faces) {
          const best = f.matches[0];
          cards.append(el('li', { 'data-face': f.face, class: 'facecard ' + f.decision, onclick: () => choose(f.face) },
            el('strong', null, 'Face ' + (f.face + 1)), el('span', null, f.decision + (best && f.decision !== 'unknown' ? ': ' + best.identity : ''))));
        }
        out.replaceChildren(
          el('p', null, r.faces_found + (r.faces_found === 1 ? ' face' : ' faces') + ' found' +
            (r.faces_truncated ? '; the largest ' + r.faces.length + ' answered (max_faces)' : '') + '. Click a face to see its matches.'),
          el('div', { class: 'row' }, photo, cards), detail);
        choose(0);
      }
    } catch (e) { showError(out, e); }
    $('search-run').disabled = false;
  }

  // ---- gallery -------------------------------------------------------------------------
  async function loadPage() {
    const grid = $('gallery-grid');
    try {
      const r = await api('GET', '/v1/identities' + query({ limit: 24, after: state.pages[state.page], prefix: state.prefix, gallery: gallery() }));
      state.next = r.next;
      grid.replaceChildren();
      for (const identity of r.identities) {
        const img = el('img', { alt: '' });
        fillThumb(img, identity.id, identity.first_sample, 160);
        grid.append(el('div', { class: 'card', 'data-id': identity.id, onclick: () => openIdentity(identity.id) }, img,
          el('div', { class: 'name' }, identity.id),
          el('div', { class: 'muted' }, (identity.name ? identity.name + ' · ' : '') + identity.samples + (identity.samples === 1 ? ' sample' : ' samples'))));
      }
      if (!r.identities.length) grid.append(el('p', { class: 'muted' }, state.prefix ? 'No identity id starts with “' + state.prefix + '”.' : 'The gallery is empty.'));
      $('gallery-page').textContent = 'page ' + (state.page + 1);
      $('gallery-prev').disabled = state.page === 0;
      $('gallery-next').disabled = !state.next;
    } catch (e) { grid.replaceChildren(el('p', { class: 'error' }, describe(e))); }
  }
  function resetPages() { state.pages = [null]; state.page = 0; }

  async function openIdentity(id) {
    const panel = $('identity');
    try {
      const r = await api('GET', identityPath(id) + query({ gallery: gallery() }));
      const samples = el('div', { class: 'samples' });
      for (const s of r.samples) {
        const img = el('img', { alt: 'sample ' + s.id });
        fillThumb(img, r.id, s.id, 192);
        samples.append(el('div', { class: 'sample' }, img, el('span', { class: 'muted' }, s.width + '×' + s.height),
          el('button', { type: 'button', class: 'danger', 'data-sample': s.id, onclick: () => deleteSample(r.id, s.id, r.samples.length) }, 'Delete')));
      }
      const addInput = el('input', { type: 'file', accept: 'image/*', multiple: '' });
      const spread = r.spread && r.spread.samples > 1
        ? 'mean distance to their centroid ' + fmt(r.spread.mean_distance_to_centroid) + ', farthest pair ' + fmt(r.spread.max_pairwise_distance)
        : 'one sample';
      panel.hidden = false;
      panel.replaceChildren(
        el('h2', null, r.id + (r.name ? ' — ' + r.name : '')),
        el('dl', null, el('dt', null, 'Samples'), el('dd', null, r.samples.length + ' (' + spread + ')'),
          el('dt', null, 'Created'), el('dd', null, r.created_at || '–'),
          el('dt', null, 'Metadata'), el('dd', null, el('pre', null, JSON.stringify(r.metadata, null, 2)))),
        samples,
        el('div', { class: 'buttons' },
          el('label', null, 'Add samples ', addInput),
          el('button', { type: 'button', onclick: () => addSamples(r.id, addInput.files) }, 'Add'),
          el('button', { type: 'button', class: 'danger', id: 'delete-identity', onclick: () => deleteIdentity(r.id) }, 'Delete this identity'),
          el('button', { type: 'button', onclick: () => { panel.hidden = true; } }, 'Close')),
        el('div', { id: 'identity-result' }));
      panel.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
    } catch (e) { showError(panel, e); }
  }
  function warningList(warnings) {
    if (!warnings || !warnings.length) return null;
    return el('ul', { class: 'notice' }, ...warnings.map((w) => el('li', null, w.message)));
  }
  async function addSamples(id, files) {
    if (!files.length) { status('Choose one or more images first.'); return; }
    const form = new FormData();
    for (const f of files) form.append('images', f);
    try {
      const r = await api('POST', identityPath(id) + '/samples' + query({ gallery: gallery() }), form);
      await openIdentity(id);
      $('identity-result').replaceChildren(el('p', null, 'Added ' + r.samples.length + ' sample(s).'), warningList(r.warnings) || '');
      loadPage();
    } catch (e) { $('identity-result').replaceChildren(el('p', { class: 'error' }, describe(e))); }
  }
  async function deleteSample(id, sample, count) {
    if (count === 1) { status('This is the identity’s only sample: delete the identity instead.'); return; }
    if (!confirm('Delete sample ' + sample + ' of “' + id + '”?')) return;
    try {
      await api('DELETE', identityPath(id) + '/samples/' + sample + query({ gallery: gallery() }));
      status('Sample deleted');
      await openIdentity(id);
      loadPage();
    } catch (e) { status(describe(e)); }
  }
  async function deleteIdentity(id) {
    if (!confirm('Delete “' + id + '” and all its samples? This cannot be undone.')) return;
    try {
      await api('DELETE', identityPath(id) + query({ gallery: gallery() }));
      $('identity').hidden = true;
      status('Deleted “' + id + '”');
      loadPage();
    } catch (e) { status(describe(e)); }
  }
  // For a face model: each chosen photo with the face that would be stored, or why it
  // would be refused (no face, or several: enrollment takes one face per photo).
  async function previewEnrollment() {
    const out = $('enroll-preview');
    out.replaceChildren();
    if (!state.model) state.model = await api('GET', '/v1/model').catch(() => null);
    if (!isFaceModel()) return;
    for (const file of $('enroll-images').files) {
      const form = new FormData();
      form.append('image', file);
      let caption, faces = [];
      try {
        const r = await api('POST', '/v1/embed', form);
        faces = r.faces;
        caption = r.faces_found === 1 ? 'the face to be stored' : r.faces_found + ' faces: enrollment takes a photo of one person';
      } catch (e) { caption = e.code === 'no_face' ? 'no face found: this photo would be refused' : describe(e); }
      const stored = faces.length === 1;
      out.append(el('figure', { class: stored ? 'ok' : 'refused' }, facePhoto(file, faces, stored ? 0 : -1, null), el('figcaption', null, file.name + ': ' + caption)));
    }
  }
  async function enroll(event) {
    event.preventDefault();
    const out = $('enroll-result');
    const form = new FormData();
    form.append('id', $('enroll-id').value.trim());
    if ($('enroll-name').value.trim()) form.append('name', $('enroll-name').value.trim());
    for (const f of $('enroll-images').files) form.append('images', f);
    try {
      const r = await api('POST', '/v1/identities' + query({ gallery: gallery() }), form);
      out.replaceChildren();
      $('enroll-form').reset();
      $('enroll-preview').replaceChildren();
      $('enroll-form').hidden = true;
      resetPages();
      await loadPage();
      await openIdentity(r.id);
      $('identity-result').replaceChildren(el('p', null, 'Enrolled “' + r.id + '” with ' + r.samples.length + ' sample(s).'), warningList(r.warnings) || '');
    } catch (e) { out.replaceChildren(el('p', { class: 'error' }, describe(e))); }
  }

  // ---- model ---------------------------------------------------------------------------
  function farPlot(curve, served) {
    const ns = 'http://www.w3.org/2000/svg';
    const svgEl = (tag, attrs) => { const n = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); return n; };
    const W = 640, H = 280, L = 50, B = 36, T = 12, R = 12;
    const maxT = Math.max(...curve.map((p) => p.threshold), served) * 1.05 || 1;
    const x = (t) => L + (t / maxT) * (W - L - R), y = (r) => H - B - r * (H - B - T);
    const svg = svgEl('svg', { viewBox: '0 0 ' + W + ' ' + H, class: 'plot', role: 'img', 'aria-label': 'false accept rate against threshold' });
    svg.append(svgEl('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, class: 'axis' }), svgEl('line', { x1: L, y1: T, x2: L, y2: H - B, class: 'axis' }));
    const sorted = [...curve].sort((a, b) => a.threshold - b.threshold);
    svg.append(svgEl('polyline', { class: 'curve', points: sorted.map((p) => x(p.threshold) + ',' + y(p.rate)).join(' ') }));
    svg.append(svgEl('line', { x1: x(served), y1: T, x2: x(served), y2: H - B, class: 'served' }));
    const label = (text, attrs) => { const t = svgEl('text', attrs); t.textContent = text; svg.append(t); };
    for (const r of [0, 0.25, 0.5, 0.75, 1]) label(pct(r), { x: L - 6, y: y(r) + 4, 'text-anchor': 'end' });
    for (let i = 0; i <= 4; i++) label(fmt((maxT * i) / 4, 2), { x: x((maxT * i) / 4), y: H - B + 16, 'text-anchor': 'middle' });
    label('threshold (distance)', { x: (W + L) / 2, y: H - 4, 'text-anchor': 'middle' });
    label('served ' + fmt(served), { x: x(served) + 4, y: T + 10 });
    return svg;
  }
  async function loadModel() {
    const box = $('model-info');
    try {
      const m = state.model || (state.model = await api('GET', '/v1/model'));
      const c = m.calibration || {};
      const input = m.input_spec || {};
      const whitening = m.recipe && m.recipe.recipe && m.recipe.recipe.whitening;
      const rows = [
        ['Model id', m.id], ['Architecture', m.architecture], ['Objective', m.objective], ['Metric', m.metric],
        ['Embedding', m.embedding_dim + ' dimensions' + (whitening ? ', whitened on the identities it trained on (the last dense and l2norm)' : '')],
        ['Input', (input.width || '?') + '×' + (input.height || '?') + ', ' + (input.channels === 3 ? 'colour' : 'grey') + (input.mirrorAverage ? ', averaged with its mirror image' : '') + (input.shiftAverage ? ', and moved ' + input.shiftAverage + ' px each way' : '')],
        ['Threshold', fmt(m.threshold) + (m.threshold_method ? ' (' + m.threshold_method + ')' : '')],
        ['At the threshold', 'false accept rate ' + pct(c.falseAcceptRate) + ', true accept rate ' + pct(c.trueAcceptRate)],
      ];
      if (c.validation) rows.push(['Validation', 'ROC AUC ' + fmt(c.validation.rocAUC) + ', equal error rate ' + pct(c.validation.equalErrorRate)]);
      const list = el('dl');
      for (const [k, v] of rows) list.append(el('dt', null, k), el('dd', null, v));
      box.replaceChildren(el('h2', null, 'The served model'), list);
      if (c.falseAcceptCurve && c.falseAcceptCurve.length) {
        box.append(el('h2', null, 'False accept rate by threshold'),
          el('p', { class: 'muted' }, 'The share of pairs of different identities closer than each distance, measured on ' + (c.identities || '?') + ' validation identities. The dashed line is the served threshold.'),
          farPlot(c.falseAcceptCurve, m.threshold));
      }
    } catch (e) { showError(box, e); }
  }

  // ---- keys and views ------------------------------------------------------------------
  async function checkKey() {
    state.isAdmin = false;
    if (state.key) {
      try {
        await api('GET', '/v1/identities' + query({ limit: 1, gallery: gallery() }));
        state.isAdmin = true;
      } catch (e) { /* not an admin key (or none): the gallery stays locked */ }
    }
    $('key-state').textContent = state.isAdmin ? 'admin key in use' : state.key ? 'key in use (not admin)' : 'no key';
    $('gallery-locked').hidden = state.isAdmin;
    $('gallery-open').hidden = !state.isAdmin;
  }
  const views = ['verify', 'search', 'gallery', 'model'];
  function show(view) {
    if (!views.includes(view)) view = 'verify';
    for (const b of document.querySelectorAll('#tabs button')) b.classList.toggle('active', b.dataset.view === view);
    for (const s of document.querySelectorAll('.view')) s.hidden = s.id !== 'view-' + view;
    if (view === 'gallery' && state.isAdmin) loadPage();
    if (view === 'model') loadModel();
    history.replaceState(null, '', '#' + view);
  }

  document.addEventListener('DOMContentLoaded', () => {
    for (const b of document.querySelectorAll('#tabs button')) b.addEventListener('click', () => show(b.dataset.view));
    dropZone($('verify-a'), 'a', () => { $('verify-run').disabled = !(state.files.a && state.files.b); });
    dropZone($('verify-b'), 'b', () => { $('verify-run').disabled = !(state.files.a && state.files.b); });
    dropZone($('search-image'), 'search', () => { $('search-run').disabled = !state.files.search; });
    $('verify-run').addEventListener('click', () => runVerify());
    $('search-run').addEventListener('click', runSearch);
    $('key-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      state.key = $('key').value.trim();
      $('key').value = '';
      if (state.key) sessionStorage.setItem('doppel.key', state.key); else sessionStorage.removeItem('doppel.key');
      state.thumbs.clear();
      await checkKey();
      status(state.isAdmin ? 'Admin key accepted' : state.key ? 'Key kept; it is not an admin key' : 'No key');
      if (!$('view-gallery').hidden && state.isAdmin) { resetPages(); loadPage(); }
    });
    $('forget-key').addEventListener('click', async () => {
      state.key = '';
      sessionStorage.removeItem('doppel.key');
      await checkKey();
      status('Key forgotten');
    });
    $('gallery-name').addEventListener('change', () => { resetPages(); state.thumbs.clear(); if (state.isAdmin) loadPage(); });
    let typing = null;
    $('gallery-prefix').addEventListener('input', () => {
      clearTimeout(typing);
      typing = setTimeout(() => { state.prefix = $('gallery-prefix').value.trim(); resetPages(); loadPage(); }, 250);
    });
    $('gallery-prev').addEventListener('click', () => { if (state.page > 0) { state.page--; loadPage(); } });
    $('gallery-next').addEventListener('click', () => { if (state.next) { state.pages[state.page + 1] = state.next; state.page++; loadPage(); } });
    $('gallery-new').addEventListener('click', () => { $('enroll-form').hidden = false; $('enroll-id').focus(); });
    $('enroll-cancel').addEventListener('click', () => { $('enroll-form').hidden = true; });
    $('enroll-form').addEventListener('submit', enroll);
    $('enroll-images').addEventListener('change', previewEnrollment);
    checkKey().then(() => show(location.hash.slice(1)));
  });
})();
