// ferzoo's browser demo: face-api finds the faces, ferzoo's TF.js export
// (model/model.json, written by `ferzoo-export --format tfjs`) gives each
// face's expression probabilities. Static files only: serve this folder
// with `python -m http.server` after `python scripts/demo_setup.py`.
//
// For tests and scripts the page exposes `window.ferzoo`: `ready` (a
// promise), `analyse(source)` and `results` (the last image's faces:
// integer boxes [x, y, width, height] in image pixels and probabilities
// in the model's class order), and sets `document.body.dataset.state`
// to loading / ready / running / done / error.
'use strict';

(() => {

const MODEL_URL = 'model/model.json';
const DETECTOR_URL = 'vendor/models';
const MIN_CONFIDENCE = 0.5;
const tf = faceapi.tf;

const $ = (id) => document.getElementById(id);
const state = (s, text) => {
  document.body.dataset.state = s;
  if (text !== undefined) $('status').textContent = text;
};

const ferzoo = { model: null, metadata: null, results: null, backend: null };
window.ferzoo = ferzoo;

async function setup() {
  const params = new URLSearchParams(window.location.search);
  const backend = params.get('backend') || 'wasm';
  if (backend === 'wasm') tf.setWasmPaths('vendor/');
  await tf.setBackend(backend);
  await tf.ready();
  ferzoo.backend = tf.getBackend();
  await faceapi.nets.ssdMobilenetv1.loadFromUri(DETECTOR_URL);
  ferzoo.model = await tf.loadGraphModel(MODEL_URL);
  ferzoo.metadata = (ferzoo.model.metadata || {}).ferzoo;
  if (!ferzoo.metadata || !ferzoo.metadata.class_names) {
    throw new Error(`${MODEL_URL} has no ferzoo metadata: export it with ferzoo-export --format tfjs`);
  }
  const m = ferzoo.metadata;
  $('model-info').textContent = `${m.class_names.length} classes (${m.class_names.join(', ')}), `
    + `${m.image_size.join('x')} px${m.grayscale ? ', gray crops' : ''}, TF.js ${ferzoo.backend} backend`;
  state('ready', 'Ready: choose a photo or use the webcam.');
}
ferzoo.ready = setup().catch((e) => {
  console.error(e);
  state('error', `Could not load the models: ${e.message}`);
  throw e;
});

// Integer box of a detection, clipped to the image.
function intBox(box, width, height) {
  const x0 = Math.max(0, Math.round(box.x));
  const y0 = Math.max(0, Math.round(box.y));
  const x1 = Math.min(width, Math.round(box.x + box.width));
  const y1 = Math.min(height, Math.round(box.y + box.height));
  return [x0, y0, x1 - x0, y1 - y0];
}

// RGB int32 pixels of a box; gray as PIL's convert('L') when asked.
function cropPixels(ctx, [x, y, w, h], gray) {
  const rgba = ctx.getImageData(x, y, w, h).data;
  const out = new Int32Array(w * h * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    const r = rgba[i]; const g = rgba[i + 1]; const b = rgba[i + 2];
    if (gray) {
      const l = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
      out[j] = l; out[j + 1] = l; out[j + 2] = l;
    } else {
      out[j] = r; out[j + 1] = g; out[j + 2] = b;
    }
  }
  return out;
}

async function analyse(source, width, height) {
  await ferzoo.ready;
  const canvas = $('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(source, 0, 0, width, height);
  const detections = await faceapi.detectAllFaces(
    canvas, new faceapi.SsdMobilenetv1Options({ minConfidence: MIN_CONFIDENCE }),
  );
  const gray = Boolean(ferzoo.metadata.grayscale);
  const faces = [];
  const boxes = detections.map((d) => intBox(d.box, width, height))
    .filter(([, , w, h]) => w > 0 && h > 0)
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  for (const box of boxes) {
    const start = performance.now();
    const x = tf.tensor4d(cropPixels(ctx, box, gray), [1, box[3], box[2], 3], 'int32');
    const y = ferzoo.model.predict(x);
    const probabilities = Array.from(await y.data());
    tf.dispose([x, y]);
    faces.push({ box, probabilities, ms: performance.now() - start });
  }
  ferzoo.results = { width, height, backend: ferzoo.backend, faces };
  draw(ctx, faces);
  list(faces);
  return ferzoo.results;
}
ferzoo.analyse = analyse;

function argmax(probabilities) {
  return probabilities.indexOf(Math.max(...probabilities));
}

function draw(ctx, faces) {
  const names = ferzoo.metadata.class_names;
  const line = Math.max(2, Math.round(Math.min(ctx.canvas.width, ctx.canvas.height) / 250));
  faces.forEach(({ box: [x, y, w, h], probabilities }, i) => {
    const k = argmax(probabilities);
    const label = `${i + 1}: ${names[k]} ${probabilities[k].toFixed(2)}`;
    ctx.strokeStyle = '#e02828';
    ctx.lineWidth = line;
    ctx.strokeRect(x, y, w, h);
    ctx.font = `${Math.max(12, Math.min(40, Math.round(h / 7)))}px sans-serif`;
    const size = ctx.measureText(label);
    const boxH = Math.round(size.actualBoundingBoxAscent + size.actualBoundingBoxDescent) + 2 * line;
    const ty = y >= boxH ? y - boxH : Math.min(y + h, ctx.canvas.height - boxH);
    ctx.fillStyle = '#e02828';
    ctx.fillRect(x, ty, size.width + 2 * line, boxH);
    ctx.fillStyle = 'white';
    ctx.fillText(label, x + line, ty + line + size.actualBoundingBoxAscent);
  });
}

function list(faces) {
  const names = ferzoo.metadata.class_names;
  const root = $('faces');
  root.textContent = '';
  faces.forEach(({ probabilities }, i) => {
    const k = argmax(probabilities);
    const card = document.createElement('div');
    card.className = 'face';
    card.innerHTML = `<h2>Face ${i + 1}: ${names[k]}</h2>`;
    names.forEach((name, c) => {
      const row = document.createElement('div');
      row.className = c === k ? 'row top' : 'row';
      const pct = (100 * probabilities[c]).toFixed(1);
      row.innerHTML = `<span>${name}</span><div class="bar"><span style="width:${pct}%"></span></div><span>${pct}%</span>`;
      card.appendChild(row);
    });
    root.appendChild(card);
  });
  const n = faces.length;
  state('done', n ? `${n} face${n > 1 ? 's' : ''} found.` : 'No face found.');
}

$('file').addEventListener('change', async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  stopWebcam();
  state('running', `Analysing ${file.name}...`);
  try {
    const image = new Image();
    const url = URL.createObjectURL(file);
    image.src = url;
    await image.decode();
    await analyse(image, image.naturalWidth, image.naturalHeight);
    URL.revokeObjectURL(url);
  } catch (e) {
    console.error(e);
    state('error', `Could not analyse ${file.name}: ${e.message}`);
  }
});

let webcamTimer = null;
function stopWebcam() {
  if (webcamTimer) clearTimeout(webcamTimer);
  webcamTimer = null;
  const video = $('video');
  if (video.srcObject) video.srcObject.getTracks().forEach((t) => t.stop());
  video.srcObject = null;
  $('webcam').textContent = 'Use the webcam';
}

$('webcam').addEventListener('click', async () => {
  const video = $('video');
  if (video.srcObject) { stopWebcam(); state('ready', 'Webcam stopped.'); return; }
  try {
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: true });
    await video.play();
    $('webcam').textContent = 'Stop the webcam';
    const loop = async () => {
      if (!video.srcObject) return;
      await analyse(video, video.videoWidth, video.videoHeight);
      webcamTimer = setTimeout(loop, 100);
    };
    loop();
  } catch (e) {
    state('error', `No webcam: ${e.message}`);
  }
});
})();
