// Record MediaPipe's BlazeFace as @vladmandic/human runs it (TF.js graph
// model, cpu backend) on seeded inputs and one photo: the parity fixture
// of ferzoo's Keras port (ferzoo/predict/blazeface.py).
//
// Inputs: two seeded non-square uint8 images floor(256 * mulberry32(seed))
// (H x W x 3) and a small photo read from a binary PPM (P6) file, stored
// in the fixture as base64 uint8. Each is padded with black to a square
// at the bottom/right (as ferzoo.predict.detect.ssd_input does), resized
// to 256 x 256 with tf.image.resizeBilinear, normalised to x / 127.5 - 1
// and run; the four outputs are joined as human's src/face/blazeface.ts
// does (512 anchors of the 16 x 16 map, then 384 of the 8 x 8 map; column
// 0 the logit, then 16 regressions). Recorded: at every 7th anchor and at
// the 20 best: the score (sigmoid of the logit), the box decoded as
// human's decodeBoxes ([x0, y0, x1, y1] in pixels of the 256 x 256 input)
// and the six keypoints (regression + anchor, 256 px units); for the
// photo also tf.image.nonMaxSuppression's kept anchors (human's defaults:
// IoU 0.1, score 0.2, here at most 10). Float arrays are base64
// little-endian float32.
//
// Invocations (nothing is installed into the repository):
//   python -c "import matplotlib.cbook as c; from PIL import Image; \
//     Image.open(c.get_sample_data('grace_hopper.jpg')).convert('RGB') \
//     .resize((80, 94), Image.LANCZOS).save('/tmp/grace_hopper_80.ppm')"
//   node scripts/blazeface_reference.mjs --photo /tmp/grace_hopper_80.ppm
//   node scripts/blazeface_reference.mjs --photo FILE.ppm --package-dir DIR --node-modules DIR --out FILE
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  TFJS_VERSION, anchorPicks, b64, noise, readPpm,
} from './faceapi_node.mjs';
import { parseArgs } from './node_args.mjs';

const PACKAGE = '@vladmandic/human';
const VERSION = '3.3.6';
const SIZE = 256;
const NOISE = [{ seed: 5, height: 40, width: 56 }, { seed: 6, height: 56, width: 40 }];
const STRIDE = 7;
const TOP = 20;

function args() {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  return parseArgs(process.argv.slice(2), {
    keys: { '--package-dir': 'packageDir', '--node-modules': 'nodeModules', '--out': 'out', '--photo': 'photo' },
    usage: 'node blazeface_reference.mjs --photo FILE.ppm [--package-dir DIR] [--node-modules DIR] [--out FILE]',
    defaults: { out: path.join(root, 'tests/fixtures/blazeface_reference.json') },
    required: ['photo'],
    resolve: true,
  });
}

// npm pack human / npm install TF.js into a temporary folder unless given.
function install(a) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'blazeface-ref-'));
  const npm = (cmd) => execFileSync('npm', cmd, { cwd: tmp, stdio: ['ignore', 'pipe', 'inherit'] }).toString();
  if (!a.packageDir) {
    const tarball = npm(['pack', `${PACKAGE}@${VERSION}`, '--silent']).trim().split('\n').pop();
    execFileSync('tar', ['xzf', tarball], { cwd: tmp });
    a.packageDir = path.join(tmp, 'package');
  }
  if (!a.nodeModules) {
    npm(['install', '--no-audit', '--no-fund', '--prefix', tmp, `@tensorflow/tfjs@${TFJS_VERSION}`]);
    a.nodeModules = path.join(tmp, 'node_modules');
  }
  return tmp;
}

// human's generateAnchors for a 256 px input: [x, y] pixel centres.
function anchorCentres() {
  const out = [];
  for (const [stride, perCell] of [[SIZE / 16, 2], [SIZE / 8, 6]]) {
    const cells = Math.floor((SIZE + stride - 1) / stride);
    for (let y = 0; y < cells; y += 1) {
      for (let x = 0; x < cells; x += 1) {
        for (let n = 0; n < perCell; n += 1) out.push([stride * (x + 0.5), stride * (y + 0.5)]);
      }
    }
  }
  return out;
}

async function run(tf, model, anchors, image, withNms) {
  const side = Math.max(image.height, image.width);
  const outputs = tf.tidy(() => {
    const pixels = tf.tensor3d(image.data, [image.height, image.width, 3], 'int32').toFloat();
    const square = tf.pad(pixels, [[0, side - image.height], [0, side - image.width], [0, 0]]);
    const resized = tf.image.resizeBilinear(square.expandDims(0), [SIZE, SIZE]);
    const res = model.execute(tf.sub(tf.div(resized, 127.5), 1));
    const sorted = [...res].sort((a, b) => a.size - b.size); // as human
    const c384 = tf.concat([sorted[0], sorted[2]], 2);
    const c512 = tf.concat([sorted[1], sorted[3]], 2);
    const batch = tf.squeeze(tf.concat([c512, c384], 1), [0]);
    // human's decodeBoxes
    const anchorsT = tf.tensor2d(anchors);
    const centres = tf.add(tf.slice(batch, [0, 1], [-1, 2]), anchorsT);
    const half = tf.div(tf.slice(batch, [0, 3], [-1, 2]), 2);
    const boxes = tf.concat2d([tf.sub(centres, half), tf.add(centres, half)], 1);
    const scores = tf.squeeze(tf.sigmoid(tf.slice(batch, [0, 0], [-1, 1])));
    const points = tf.add(tf.reshape(tf.slice(batch, [0, 5], [-1, -1]), [-1, 6, 2]), tf.expandDims(anchorsT, 1));
    return { boxes, scores, points };
  });
  const s = await outputs.scores.data();
  const b = await outputs.boxes.data();
  const p = await outputs.points.data();
  const { strided, top } = anchorPicks(s, STRIDE, TOP);
  const pick = (idx, withIndices) => ({
    ...(withIndices ? { indices: idx } : {}),
    scores: { shape: [idx.length], data: b64(idx.map((k) => s[k])) },
    boxes_xyxy_px: { shape: [idx.length, 4], data: b64(idx.flatMap((k) => Array.from(b.subarray(4 * k, 4 * k + 4)))) },
    keypoints_px: { shape: [idx.length, 6, 2], data: b64(idx.flatMap((k) => Array.from(p.subarray(12 * k, 12 * k + 12)))) },
  });
  const out = { num_anchors: s.length, strided: pick(strided, false), top: pick(top, true) };
  if (withNms) {
    const kept = await tf.image.nonMaxSuppressionAsync(outputs.boxes, outputs.scores, 10, 0.1, 0.2);
    out.nms = { max: 10, iou: 0.1, min_score: 0.2, indices: Array.from(await kept.data()) };
  }
  tf.dispose(outputs);
  return out;
}

async function main() {
  const a = args();
  const photo = readPpm(a.photo);
  const tmp = install(a);
  const require = createRequire(path.join(a.nodeModules, 'noop.js'));
  const tf = require('@tensorflow/tfjs');
  await tf.setBackend('cpu');
  await tf.ready();
  const modelJson = path.join(a.packageDir, 'models/blazeface.json');
  const topology = JSON.parse(fs.readFileSync(modelJson));
  const bin = fs.readFileSync(path.join(a.packageDir, 'models', topology.weightsManifest[0].paths[0]));
  const weightData = bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength);
  const model = await tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: topology.modelTopology, weightSpecs: topology.weightsManifest[0].weights, weightData,
  }));
  const pkg = JSON.parse(fs.readFileSync(path.join(a.packageDir, 'package.json')));
  const anchors = anchorCentres();
  const noiseEntries = [];
  for (const spec of NOISE) {
    noiseEntries.push({ ...spec, ...(await run(tf, model, anchors, { ...spec, data: noise(spec) }, false)) });
  }
  const out = {
    about: 'human TF.js (cpu backend) BlazeFace outputs; written by scripts/blazeface_reference.mjs',
    package: `${pkg.name}@${pkg.version}`,
    tfjs: tf.version.tfjs,
    backend: tf.getBackend(),
    inputs: 'noise: uint8 floor(256 * mulberry32(seed)), H x W x 3; photo: base64 uint8 H x W x 3; '
      + 'each padded to a square at the bottom/right, resized to 256 (resizeBilinear)',
    anchor_stride: STRIDE,
    noise: noiseEntries,
    photo: {
      source: path.basename(a.photo),
      height: photo.height,
      width: photo.width,
      pixels: b64(photo.data, Uint8Array),
      ...(await run(tf, model, anchors, photo, true)),
    },
  };
  fs.mkdirSync(path.dirname(a.out), { recursive: true });
  fs.writeFileSync(a.out, `${JSON.stringify(out, null, 1)}\n`);
  fs.rmSync(tmp, { recursive: true, force: true });
  console.log(`wrote ${a.out}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
