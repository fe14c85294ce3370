// backprop viz: the page. Plain JavaScript and canvas; the state comes from the server over
// Server-Sent Events (/events), every request carries the token of the URL.
'use strict';
const T = new URLSearchParams(location.search).get('t') || '';
const $ = id => document.getElementById(id);
const PALETTE = [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
  [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]];
const rgb = (c, a) => `rgba(${c[0]},${c[1]},${c[2]},${a === undefined ? 1 : a})`;
let options = null, points = null, state = null, selected = null;

// Frames carry their number arrays as base64 of little-endian float32 (F32), int8 (I8) or uint8 (U8).
function bytes(b64) { const s = atob(b64), b = new Uint8Array(s.length); for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i); return b; }
const F32 = b64 => new Float32Array(bytes(b64).buffer), I8 = b64 => new Int8Array(bytes(b64).buffer), U8 = bytes;
// The frame's arrays decoded, in the shapes the drawing code reads.
function decode(s) {
  if (s.type !== 'state') return s;
  for (const e of s.edges) for (const k of ['weight', 'grad', 'update']) e[k] = F32(e[k]);
  const h = s.history, steps = h.step, cols = ['trainLoss', 'trainAcc', 'testLoss', 'testAcc'].map(k => [k, F32(h[k])]);
  s.history = steps.map((step, i) => { const p = { step }; for (const [k, v] of cols) p[k] = v[i]; return p; });
  if (s.heat) { s.heat.cls = U8(s.heat.cls); s.heat.p = U8(s.heat.p); }
  if (s.neurons) s.neurons = s.neurons.map(l => {
    const max = F32(l.max), v = I8(l.v);
    return Array.from(max, (m, j) => ({ max: m, v: v.subarray(j * l.cells, (j + 1) * l.cells) }));
  });
  if (s.line) {
    const xs = F32(s.line.xs), k = s.line.classes, split = a => Array.from({ length: k }, (_, j) => a.subarray(j * xs.length, (j + 1) * xs.length));
    s.line.xs = xs; s.line.logits = split(F32(s.line.logits)); s.line.probs = split(F32(s.line.probs));
  }
  if (s.images) s.images.weights = F32(s.images.weights);
  for (const v of [s.hidden, s.pca]) if (v) { v.pts = F32(v.pts); v.labels = U8(v.labels); }
  return s;
}

// What drawing costs this page (milliseconds of the main thread per frame: the script, then the
// browser's style, layout and paint of the new picture), reported to the server with whether the page is visible: it spaces the frames to keep
// their cost within its budget, and sends none while the page is hidden.
const CLIENT = Math.random().toString(36).slice(2) + Date.now().toString(36);
let drawMs = 0, drawFrames = 0, reportedMs = -1, reportedVisible = null;
let timing = 0;
function timed(f) { if (timing++) try { return f(); } finally { timing--; } const t = performance.now(); try { return f(); } finally { timing--; drawMs += performance.now() - t; } }
function report() {
  const visible = !document.hidden, ms = drawFrames ? drawMs / drawFrames : reportedMs;
  if (visible === reportedVisible && Math.abs(ms - reportedMs) <= 0.2 * reportedMs + 0.2) return;
  reportedMs = ms; reportedVisible = visible;
  if (drawFrames >= 8) { drawMs /= 2; drawFrames /= 2; } // a moving average
  fetch('/api/viewer?t=' + encodeURIComponent(T), { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ client: CLIENT, visible, drawMs: Math.max(0, ms) }) }).catch(() => {});
}

let busy = 0; // requests in flight, shown as body[data-busy] (tests wait for 0)
async function api(path, body) {
  const url = path + (path.includes('?') ? '&' : '?') + 't=' + encodeURIComponent(T);
  document.body.dataset.busy = ++busy;
  let r, text;
  try {
    r = await fetch(url, body === undefined ? {} : { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    text = await r.text();
  } finally { document.body.dataset.busy = --busy; }
  let json = null;
  try { json = JSON.parse(text); } catch { json = { text }; }
  if (!r.ok) { showError(json.error || text); throw new Error(json.error || text); }
  return json;
}
function showError(msg) { $('error').textContent = msg ? 'error: ' + msg : ''; }

function fillSelect(id, names, value) {
  const s = $(id);
  s.innerHTML = '';
  for (const n of names) { const o = document.createElement('option'); o.value = o.textContent = n; s.appendChild(o); }
  s.value = value;
}

function applyOptions(o) {
  options = o;
  const c = o.config;
  fillSelect('dataset', o.datasets, c.dataset);
  fillSelect('activation', o.activations, c.activation);
  fillSelect('loss', o.losses, c.loss);
  fillSelect('optimizer', o.optimizers, c.optimizer);
  $('features').innerHTML = '';
  const labels = { x: 'x', y: 'y', x2: 'x²', y2: 'y²', xy: 'xy', sinx: 'sin x', siny: 'sin y' };
  for (const f of o.features) {
    const l = document.createElement('label');
    l.innerHTML = `<input type="checkbox" data-feature="${f}" ${c.features.includes(f) ? 'checked' : ''}> ${labels[f] || f}`;
    $('features').appendChild(l);
  }
  $('hidden').value = c.hidden.join(',');
  $('lr').value = c.lr; $('batch').value = c.batchSize; $('l2').value = c.l2;
  $('noise').value = c.noise; $('split').value = c.trainFraction; $('seed').value = c.seed;
  $('csv-row').classList.toggle('hidden', c.dataset !== 'csv');
  $('command').textContent = '';
}

function readConfig() {
  const hidden = $('hidden').value.split(/[ ,]+/).filter(s => s.length).map(Number);
  let features = [...document.querySelectorAll('#features input:checked')].map(i => i.dataset.feature);
  const dataset = $('dataset').value;
  if (dataset === 'cities-longitude') features = features.filter(f => !f.includes('y'));
  if (features.length === 0) features = ['x'];
  return {
    dataset, features, hidden, activation: $('activation').value, loss: $('loss').value,
    optimizer: $('optimizer').value, lr: Number($('lr').value), batchSize: Number($('batch').value),
    l2: Number($('l2').value), noise: Number($('noise').value), trainFraction: Number($('split').value),
    seed: Number($('seed').value),
  };
}

async function apply() {
  const body = { config: readConfig() };
  const file = $('csv').files[0];
  if (body.config.dataset === 'csv' && file) body.csv = await file.text();
  try {
    applyOptions(await api('/api/config', body));
    showError('');
    await loadPoints();
    selected = null;
    $('inspect').innerHTML = '<p class="note">Click an edge or a neuron of the network.</p>';
  } catch { /* shown */ }
}

async function control(action) { try { await api('/api/control', { action }); showError(''); } catch { /* shown */ } }

async function loadPoints() { points = await api('/api/points'); drawLegend(); drawPoints(); }

function drawLegend() {
  $('legend').innerHTML = points.classes.map((n, i) => `<span><i style="background:${rgb(PALETTE[i % 10])}"></i>${n}</span>`).join('');
}

// One reused canvas per size for putting an ImageData on before it is drawn scaled.
const offscreens = {};
function offscreen(img) {
  const key = img.width + 'x' + img.height;
  let c = offscreens[key];
  if (!c) { c = offscreens[key] = document.createElement('canvas'); c.width = img.width; c.height = img.height; }
  c.getContext('2d').putImageData(img, 0, 0);
  return c;
}

// ---- decision regions --------------------------------------------------------------------
function toCanvas(x, y, w, h) {
  const b = points.box;
  return [(x - b[0]) / (b[1] - b[0]) * w, (b[3] - y) / (b[3] - b[2]) * h];
}
function drawHeat(s) {
  const cv = $('heatmap'), ctx = cv.getContext('2d'), W = cv.width, H = cv.height;
  ctx.clearRect(0, 0, W, H);
  const k = points.classes.length;
  if (s.heat) {
    const g = s.heat.grid, img = new ImageData(g, g);
    for (let i = 0; i < g * g; i++) {
      const c = PALETTE[s.heat.cls[i] % 10];
      const a = Math.max(0, (s.heat.p[i] / 100 - 1 / k) / (1 - 1 / k)) * 0.85 + 0.1;
      for (let j = 0; j < 3; j++) img.data[4 * i + j] = Math.round(255 + (c[j] - 255) * a);
      img.data[4 * i + 3] = 255;
    }
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(offscreen(img), 0, 0, W, H);
  } else if (s.line) {
    const n = s.line.xs.length;
    for (let i = 0; i < n; i++) {
      let best = 0;
      for (let j = 1; j < k; j++) if (s.line.probs[j][i] > s.line.probs[best][i]) best = j;
      const p = s.line.probs[best][i], a = Math.max(0, (p - 1 / k) / (1 - 1 / k)) * 0.85 + 0.1;
      ctx.fillStyle = rgb(PALETTE[best % 10], a);
      ctx.fillRect(i / n * W, 0, W / n + 1, H);
    }
  }
  cv.dataset.step = s.step;
}

// The map and the points change only with the data: drawn once on a canvas laid over the regions.
function drawPoints() {
  const cv = $('heat-points'), ctx = cv.getContext('2d'), W = cv.width, H = cv.height, k = points.classes.length;
  ctx.clearRect(0, 0, W, H);
  if (points.map) {
    ctx.strokeStyle = 'rgba(40,40,40,0.7)'; ctx.lineWidth = 1;
    for (const poly of EUROPE) {
      ctx.beginPath();
      poly.forEach(([x, y], i) => { const [px, py] = toCanvas(x, y, W, H); i ? ctx.lineTo(px, py) : ctx.moveTo(px, py); });
      ctx.stroke();
    }
  }
  const d = points.dims;
  const draw = (xs, ys, test) => {
    for (let i = 0; i < ys.length; i++) {
      const x = xs[i * d], y = d > 1 ? xs[i * d + 1] : (ys[i] + 0.5) / k * (points.box[3] - points.box[2]) + points.box[2] + 0.08 * Math.sin(i * 12.9898);
      const [px, py] = toCanvas(x, y, W, H);
      ctx.beginPath(); ctx.arc(px, py, 2.6, 0, 2 * Math.PI);
      ctx.fillStyle = test ? '#fff' : rgb(PALETTE[ys[i] % 10]);
      ctx.strokeStyle = test ? rgb(PALETTE[ys[i] % 10]) : '#fff';
      ctx.lineWidth = test ? 1.6 : 0.8;
      ctx.fill(); ctx.stroke();
    }
  };
  draw(points.train, points.trainY, false);
  draw(points.test, points.testY, true);
}

// ---- network diagram ---------------------------------------------------------------------
const MAX_NODES = 16;
function layout(sizes, image) {
  const first = image ? 1 : 0, cols = sizes.length - first, gapX = 120, gapY = 44;
  const shown = sizes.map(n => Math.min(n, MAX_NODES));
  const height = Math.max(...shown.slice(first)) * gapY + 20;
  const pos = sizes.map((n, l) => {
    const m = shown[l], col = l - first;
    return Array.from({ length: m }, (_, j) => [20 + col * gapX, (height - m * gapY) / 2 + j * gapY + 8]);
  });
  return { pos, shown, first, width: 40 + (cols - 1) * gapX + 40, height };
}
let diagramKey = '';
function buildDiagram(s) {
  const image = s.kind === 'image';
  const L = layout(s.sizes, image), div = $('diagram');
  div.innerHTML = '';
  div.style.width = L.width + 'px'; div.style.height = L.height + 'px';
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('width', L.width); svg.setAttribute('height', L.height);
  div.appendChild(svg);
  for (let l = L.first; l < s.sizes.length - 1; l++)
    for (let to = 0; to < L.shown[l + 1]; to++)
      for (let from = 0; from < L.shown[l]; from++) {
        const [x1, y1] = L.pos[l][from], [x2, y2] = L.pos[l + 1][to];
        for (const cls of ['edge', 'hit']) {
          const e = document.createElementNS('http://www.w3.org/2000/svg', 'line');
          e.setAttribute('x1', x1 + 32); e.setAttribute('y1', y1 + 16); e.setAttribute('x2', x2); e.setAttribute('y2', y2 + 16);
          e.setAttribute('class', cls);
          e.dataset.layer = l; e.dataset.to = to; e.dataset.from = from;
          if (cls === 'hit') e.addEventListener('click', () => inspect({ kind: 'edge', layer: l, to, from }, e));
          svg.appendChild(e);
        }
      }
  s.sizes.forEach((n, l) => {
    if (l < L.first) return;
    for (let j = 0; j < L.shown[l]; j++) {
      const c = document.createElement('canvas');
      c.width = c.height = 32;
      c.className = 'neuron';
      c.dataset.layer = l - 1; c.dataset.neuron = j;
      c.style.left = L.pos[l][j][0] + 'px'; c.style.top = L.pos[l][j][1] + 'px';
      c.title = l === 0 ? `input ${points.features[j] || j}` : l === s.sizes.length - 1 ? `output ${points.classes[j]}` : `layer ${l} neuron ${j}`;
      c.addEventListener('click', () => inspect({ kind: 'neuron', layer: l - 1, to: j, from: 0 }, c));
      div.appendChild(c);
    }
  });
  diagramKey = s.sizes.join('-') + s.kind;
}
function drawDiagram(s) {
  if (diagramKey !== s.sizes.join('-') + s.kind) buildDiagram(s);
  const mode = $('edge-mode').value;
  const edges = document.querySelectorAll('#diagram line.edge');
  for (const e of edges) {
    const E = s.edges[+e.dataset.layer], v = E[mode][(+e.dataset.to) * E.cols + (+e.dataset.from)], m = Math.min(1, Math.abs(v) / Math.max(1e-12, E[mode + 'Max']));
    // Only what changed visibly (each attribute set costs the browser a style and paint pass).
    const stroke = v >= 0 ? 'rgb(30,110,200)' : 'rgb(240,120,20)', width = (0.3 + 4.5 * m).toFixed(1), opacity = (0.25 + 0.75 * m).toFixed(2);
    if (e._stroke !== stroke) e.setAttribute('stroke', e._stroke = stroke);
    if (e._width !== width) e.setAttribute('stroke-width', e._width = width);
    if (e._opacity !== opacity) e.setAttribute('stroke-opacity', e._opacity = opacity);
  }
  $('diagram').dataset.step = s.step;
  if (s.images) {
    // Image models: each first-layer neuron's thumbnail is its weights as an image.
    const side = s.images.side, w = s.images.weights;
    for (const c of document.querySelectorAll('#diagram canvas.neuron[data-layer="0"]'))
      c.getContext('2d').drawImage(weightImage(w, +c.dataset.neuron, side), 0, 0, 32, 32);
  }
  if (!s.neurons) return;
  for (const c of document.querySelectorAll('#diagram canvas.neuron')) {
    const layer = s.neurons[+c.dataset.layer + 1], n = layer && layer[+c.dataset.neuron];
    if (!n) continue;
    const ctx = c.getContext('2d');
    if (s.heat) {
      const g = Math.round(Math.sqrt(n.v.length)), img = new ImageData(g, g);
      for (let i = 0; i < n.v.length; i++) {
        const v = n.v[i] / 100, col = v >= 0 ? [30, 110, 200] : [240, 120, 20], a = Math.abs(v);
        for (let j = 0; j < 3; j++) img.data[4 * i + j] = Math.round(255 + (col[j] - 255) * a);
        img.data[4 * i + 3] = 255;
      }
      ctx.drawImage(offscreen(img), 0, 0, 32, 32);
    } else {
      ctx.clearRect(0, 0, 32, 32);
      ctx.strokeStyle = '#333'; ctx.beginPath();
      n.v.forEach((v, i) => { const x = i / (n.v.length - 1) * 32, y = 16 - v / 100 * 14; i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
      ctx.stroke();
    }
  }
}

// ---- inspector ---------------------------------------------------------------------------
function fmt(v) { return v === undefined || v === null ? '' : Number(v).toPrecision(6); }
async function inspect(sel, el) {
  selected = sel;
  document.querySelectorAll('#diagram .selected').forEach(e => e.classList.remove('selected'));
  if (el) {
    el.classList.add('selected');
    if (el.classList.contains('hit')) el.previousSibling.classList.add('selected');
  }
  const body = { ...sel, example: Number($('example').value), split: $('example-split').value };
  let r;
  try { r = await api('/api/inspect', body); } catch { return; }
  const what = r.kind === 'edge' ? `weight of layer ${r.layer + 1}: input ${r.from} → neuron ${r.to}` : r.layer < 0 ? `input ${r.to}` : `neuron ${r.to} of layer ${r.layer + 1}`;
  let html = `<p>${what}, ${r.split} example ${r.example} (class ${r.label}), step ${r.step}, loss ${fmt(r.loss)}</p>`;
  html += `<p class="big">value <span id="inspect-value" data-value="${r.value}">${fmt(r.value)}</span></p>`;
  if (r.grad !== undefined) html += `<p class="big">∂L/∂${r.kind === 'edge' ? 'w' : 'z'} <span id="inspect-grad" data-value="${r.grad}">${fmt(r.grad)}</span></p>`;
  if (r.product !== undefined) html += `<p>chain rule: ∂L/∂z × a = <span id="inspect-dz" data-value="${r.dLdz}">${fmt(r.dLdz)}</span> × <span id="inspect-a" data-value="${r.aIn}">${fmt(r.aIn)}</span> = <span id="inspect-product" data-value="${r.product}">${fmt(r.product)}</span></p>`;
  if (r.batchGrad !== undefined) html += `<p>last training batch: gradient ${fmt(r.batchGrad)}, update ${fmt(r.lastUpdate)}</p>`;
  html += r.lines.map(l => `<p>${l.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</p>`).join('');
  $('inspect').innerHTML = html;
}

// ---- curves, hidden view, lines, images ---------------------------------------------------
function drawCurves(h) {
  const cv = $('curves'), ctx = cv.getContext('2d'), W = cv.width, H = cv.height;
  ctx.clearRect(0, 0, W, H);
  if (!h || h.length === 0) return;
  const maxStep = Math.max(1, h[h.length - 1].step), maxLoss = Math.max(1e-6, ...h.map(p => Math.max(p.trainLoss, p.testLoss)));
  const X = s => 30 + s / maxStep * (W - 40), Y = (v, m) => H - 20 - v / m * (H - 30);
  ctx.strokeStyle = '#aaa'; ctx.strokeRect(30, 10, W - 40, H - 30);
  ctx.fillStyle = '#555'; ctx.font = '10px sans-serif';
  ctx.fillText(maxLoss.toPrecision(3), 0, 14); ctx.fillText('0', 18, H - 20); ctx.fillText('step ' + maxStep, W - 60, H - 6);
  const line = (key, m, color, dash) => {
    ctx.setLineDash(dash); ctx.strokeStyle = color; ctx.beginPath();
    h.forEach((p, i) => { const y = Y(Math.max(0, p[key]), m); i ? ctx.lineTo(X(p.step), y) : ctx.moveTo(X(p.step), y); });
    ctx.stroke(); ctx.setLineDash([]);
  };
  line('trainLoss', maxLoss, '#1565c0', []); line('testLoss', maxLoss, '#1565c0', [4, 3]);
  line('trainAcc', 1, '#2e7d32', []); line('testAcc', 1, '#2e7d32', [4, 3]);
  const last = h[h.length - 1];
  ctx.fillStyle = '#222';
  ctx.fillText(`train loss ${last.trainLoss.toFixed(3)} acc ${(100 * last.trainAcc).toFixed(1)}%   test loss ${last.testLoss.toFixed(3)} acc ${(100 * last.testAcc).toFixed(1)}%`, 34, 22);
}

function scatter(cv, pts, labels, dims, angle, names) {
  const ctx = cv.getContext('2d'), W = cv.width, H = cv.height, n = labels.length;
  ctx.clearRect(0, 0, W, H);
  const xy = [];
  for (let i = 0; i < n; i++) {
    let x = pts[i * dims], y = pts[i * dims + 1];
    if (dims === 3) { const z = pts[i * dims + 2]; const c = Math.cos(angle), s = Math.sin(angle); x = c * x + s * z; y = y * 0.9 + 0.3 * (-s * pts[i * dims] + c * z); }
    xy.push([x, y]);
  }
  const mx = Math.max(1e-6, ...xy.map(p => Math.abs(p[0]))), my = Math.max(1e-6, ...xy.map(p => Math.abs(p[1])));
  ctx.strokeStyle = '#eee'; ctx.beginPath(); ctx.moveTo(W / 2, 0); ctx.lineTo(W / 2, H); ctx.moveTo(0, H / 2); ctx.lineTo(W, H / 2); ctx.stroke();
  const sums = {};
  xy.forEach(([x, y], i) => {
    const px = W / 2 + x / mx * (W / 2 - 8), py = H / 2 - y / my * (H / 2 - 8), c = labels[i];
    ctx.fillStyle = rgb(PALETTE[c % 10], 0.8);
    ctx.beginPath(); ctx.arc(px, py, 2.5, 0, 2 * Math.PI); ctx.fill();
    const t = sums[c] || (sums[c] = [0, 0, 0]); t[0] += px; t[1] += py; t[2]++;
  });
  if (!names) return;
  // each class's name at the mean of its points
  ctx.font = 'bold 14px sans-serif'; ctx.textAlign = 'center'; ctx.lineWidth = 3; ctx.strokeStyle = '#fff';
  for (const c in sums) {
    const [sx, sy, n] = sums[c];
    ctx.fillStyle = rgb(PALETTE[c % 10]);
    ctx.strokeText(names[c], sx / n, sy / n + 5); ctx.fillText(names[c], sx / n, sy / n + 5);
  }
  ctx.textAlign = 'start'; ctx.lineWidth = 1;
}

// The hidden view: each frame moves the points (and turns a 3-D view a little). No in-between
// pictures: each picture costs the browser a paint, which on a small machine training would have.
let hiddenTurn = 0;
function drawHidden(hv) {
  $('hidden-view').classList.toggle('hidden', !hv);
  if (!hv) return;
  $('hidden-title').textContent = hv.method === 'pca' ? "First hidden layer's view (PCA of its activations)" : `First hidden layer's view (its ${hv.dims === 3 ? '3-D' : '2-D'} activations)`;
  if (hv.dims === 3) hiddenTurn += 0.15;
  scatter($('hidden-canvas'), hv.pts, hv.labels, hv.dims, hiddenTurn, points.classes);
}

function drawLines(line) {
  $('line-view').classList.toggle('hidden', !line);
  if (!line) return;
  const cv = $('lines'), ctx = cv.getContext('2d'), W = cv.width, H = cv.height, n = line.xs.length;
  ctx.clearRect(0, 0, W, H);
  const top = H * 0.55, maxAbs = Math.max(1e-6, ...line.logits.map(a => Math.max(...a.map(Math.abs))));
  const X = i => i / (n - 1) * W;
  ctx.strokeStyle = '#ccc'; ctx.beginPath(); ctx.moveTo(0, top / 2); ctx.lineTo(W, top / 2); ctx.moveTo(0, top + 4); ctx.lineTo(W, top + 4); ctx.stroke();
  ctx.font = '10px sans-serif'; ctx.fillStyle = '#555';
  ctx.fillText('h = m·x + b (logits)', 4, 12); ctx.fillText('softmax', 4, top + 16);
  line.logits.forEach((ys, j) => {
    ctx.strokeStyle = rgb(PALETTE[j % 10]); ctx.lineWidth = 1.5; ctx.beginPath();
    ys.forEach((v, i) => { const y = top / 2 - v / maxAbs * (top / 2 - 6); i ? ctx.lineTo(X(i), y) : ctx.moveTo(X(i), y); });
    ctx.stroke();
  });
  line.probs.forEach((ys, j) => {
    ctx.strokeStyle = rgb(PALETTE[j % 10]); ctx.beginPath();
    ys.forEach((v, i) => { const y = H - 6 - v * (H - top - 14); i ? ctx.lineTo(X(i), y) : ctx.moveTo(X(i), y); });
    ctx.stroke();
  });
  ctx.lineWidth = 1;
  ctx.fillText(`x from ${line.xs[0].toFixed(1)} to ${line.xs[n - 1].toFixed(1)}`, W - 110, H - 2);
}

// Neuron j's incoming weights as a side x side image: blue positive, orange negative.
function weightImage(w, j, side) {
  const img = new ImageData(side, side);
  let m = 1e-9;
  for (let p = 0; p < side * side; p++) m = Math.max(m, Math.abs(w[j * side * side + p]));
  for (let p = 0; p < side * side; p++) {
    const v = w[j * side * side + p] / m, col = v >= 0 ? [30, 110, 200] : [240, 120, 20];
    for (let c = 0; c < 3; c++) img.data[4 * p + c] = Math.round(255 + (col[c] - 255) * Math.abs(v));
    img.data[4 * p + 3] = 255;
  }
  return offscreen(img);
}

function drawImages(s) {
  $('images-view').classList.toggle('hidden', !s.images);
  $('pca-view').classList.toggle('hidden', !s.pca);
  if (s.images) {
    const side = s.images.side, w = s.images.weights, neurons = w.length / (side * side), shown = Math.min(neurons, 32);
    const cv = $('weight-images'), ctx = cv.getContext('2d'), cell = 42, perRow = 8;
    cv.height = Math.ceil(shown / perRow) * (cell + 2);
    cv.width = perRow * (cell + 2);
    ctx.imageSmoothingEnabled = false;
    for (let j = 0; j < shown; j++)
      ctx.drawImage(weightImage(w, j, side), (j % perRow) * (cell + 2), Math.floor(j / perRow) * (cell + 2), cell, cell);
  }
  if (s.pca) scatter($('pca'), s.pca.pts, s.pca.labels, 2, 0, points.classes);
}

function render(s) {
  if (s.type === 'state' && ++drawFrames === 3) setTimeout(report, 100); // a first report soon after the page opens
  timed(() => draw(s));
  // The browser's own work for this picture (style, layout, paint) runs right after the next
  // animation-frame callbacks, in the same task: a message posted from one is handled after it.
  requestAnimationFrame(() => {
    const t = performance.now(), ch = new MessageChannel();
    ch.port1.onmessage = () => { drawMs += performance.now() - t; ch.port1.close(); };
    ch.port2.postMessage(0);
  });
}
function draw(s) {
  state = s;
  if (s.type === 'error') { showError(s.error); return; }
  if (!points || points.version === undefined) return;
  $('status').textContent = `step ${s.step} · epoch ${s.epoch} · batch loss ${s.lastLoss === null ? '–' : s.lastLoss.toFixed(4)} · ${s.playing ? s.stepsPerSecond + ' steps/s' : 'paused'}`;
  $('status').dataset.step = s.step;
  if (s.error) showError(s.error);
  $('heat-view').classList.toggle('hidden', s.kind === 'image');
  if (s.kind !== 'image') drawHeat(s);
  drawDiagram(s);
  drawCurves(s.history);
  drawHidden(s.hidden);
  drawLines(s.line);
  drawImages(s);
}

async function main() {
  applyOptions(await api('/api/config'));
  await loadPoints();
  $('apply').onclick = apply;
  $('dataset').onchange = () => {
    const d = $('dataset').value;
    $('csv-row').classList.toggle('hidden', d !== 'csv');
    // Leaving the one-input dataset: give the plane back its y.
    const y = document.querySelector('#features input[data-feature="y"]');
    if (d !== 'cities-longitude' && y && !document.querySelector('#features input[data-feature*="y"]:checked')) y.checked = true;
  };
  $('play').onclick = () => control('play');
  $('pause').onclick = () => control('pause');
  $('step').onclick = () => control('step');
  $('reset').onclick = async () => { await control('reset'); await loadPoints(); };
  $('edge-mode').onchange = () => state && drawDiagram(state);
  $('example').onchange = $('example-split').onchange = () => selected && inspect(selected, null);
  $('export-checkpoint').href = '/api/export/checkpoint?t=' + encodeURIComponent(T);
  $('export-command').onclick = async () => { $('command').textContent = (await api('/api/export/command')).text; };
  const es = new EventSource('/events?t=' + encodeURIComponent(T) + '&c=' + CLIENT);
  document.addEventListener('visibilitychange', report);
  setInterval(report, 2000);
  es.onmessage = async e => {
    const s = timed(() => decode(JSON.parse(e.data)));
    if (s.type === 'state' && points && s.version !== undefined && (s.step === 0 || !points.trainY)) await loadPoints();
    render(s);
  };
  es.onerror = () => { $('status').textContent = 'disconnected (is backprop viz still running?)'; };
  document.body.dataset.ready = '1';
}
main();
