// Record face-api's SSD MobileNet v1 face detector and 68-point landmark
// net (TF.js, cpu backend) on seeded inputs and one photo: the parity
// fixture of ferzoo's Keras ports (ferzoo/predict/nets.py, detect.py).
//
// Inputs: two seeded non-square uint8 images floor(256 * mulberry32(seed))
// (H x W x 3, NHWC order, as scripts/faceapi_reference.mjs) and a small
// photo read from a binary PPM (P6) file, stored in the fixture as
// base64 uint8 so the test needs no JPEG decoder. For each input:
// face-api's forwardInput (pad to a square at the bottom/right, resize
// to 512 with resizeBilinear, the net and the box decoding) at every
// 7th anchor and at the 20 best-scoring anchors; for the photo also
// locateFaces (score threshold, NMS) at two thresholds, and the landmark
// net's 136 outputs (runNet: pad to a centred square, resize to 112).
// Float arrays are base64 little-endian float32.
//
// Invocations (nothing is installed into the repository):
//   python -c "import matplotlib.cbook as c; from PIL import Image; \
//     Image.open(c.get_sample_data('grace_hopper.jpg')).convert('RGB') \
//     .resize((80, 94), Image.LANCZOS).save('/tmp/grace_hopper_80.ppm')"
//   node scripts/faceapi_ssd_reference.mjs --photo /tmp/grace_hopper_80.ppm
//   node scripts/faceapi_ssd_reference.mjs --photo FILE.ppm --package-dir DIR --node-modules DIR --out FILE
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE = '@vladmandic/face-api';
const VERSION = '1.7.15';
const TFJS_VERSION = '4.22.0';
const NOISE = [{ seed: 5, height: 40, width: 56 }, { seed: 6, height: 56, width: 40 }];
const STRIDE = 7; // anchors 0, 7, 14, ... are recorded
const TOP = 20;

function parseArgs(argv) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const args = { out: path.join(root, 'tests/fixtures/faceapi_ssd_reference.json') };
  const keys = { '--package-dir': 'packageDir', '--node-modules': 'nodeModules', '--out': 'out', '--photo': 'photo' };
  for (let i = 0; i < argv.length; i += 2) {
    const key = keys[argv[i]];
    if (!key || argv[i + 1] === undefined) {
      console.error(`usage: node faceapi_ssd_reference.mjs --photo FILE.ppm [--package-dir DIR] [--node-modules DIR] [--out FILE]; got ${argv[i]}`);
      process.exit(2);
    }
    args[key] = path.resolve(argv[i + 1]);
  }
  if (!args.photo) {
    console.error('--photo FILE.ppm is required (see the header of this script)');
    process.exit(2);
  }
  return args;
}

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function noise({ seed, height, width }) {
  const rand = mulberry32(seed);
  const out = new Uint8Array(height * width * 3);
  for (let i = 0; i < out.length; i += 1) out[i] = Math.floor(rand() * 256);
  return out;
}

function readPpm(file) {
  const buf = fs.readFileSync(file);
  // "P6" whitespace width whitespace height whitespace maxval single-whitespace data
  const fields = [];
  let i = 0;
  while (fields.length < 4) {
    while (/\s/.test(String.fromCharCode(buf[i]))) i += 1;
    if (buf[i] === 0x23) { while (buf[i] !== 0x0a) i += 1; continue; } // comment
    let s = '';
    while (!/\s/.test(String.fromCharCode(buf[i]))) { s += String.fromCharCode(buf[i]); i += 1; }
    fields.push(s);
  }
  if (fields[0] !== 'P6' || fields[3] !== '255') throw new Error(`${file}: not a binary 8-bit PPM`);
  const width = Number(fields[1]);
  const height = Number(fields[2]);
  const data = new Uint8Array(buf.subarray(i + 1, i + 1 + width * height * 3));
  if (data.length !== width * height * 3) throw new Error(`${file}: truncated`);
  return { height, width, data };
}

function b64(values, Type = Float32Array) {
  const f = Type.from(values);
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('base64');
}

function setup(args) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'faceapi-ssd-ref-'));
  const npm = (cmd) => execFileSync('npm', cmd, { cwd: tmp, stdio: ['ignore', 'pipe', 'inherit'] }).toString();
  if (!args.packageDir) {
    const tarball = npm(['pack', `${PACKAGE}@${VERSION}`, '--silent']).trim().split('\n').pop();
    execFileSync('tar', ['xzf', tarball], { cwd: tmp });
    args.packageDir = path.join(tmp, 'package');
  }
  if (!args.nodeModules) {
    npm(['install', '--no-audit', '--no-fund', '--prefix', tmp,
      `@tensorflow/tfjs@${TFJS_VERSION}`, `@tensorflow/tfjs-backend-wasm@${TFJS_VERSION}`]);
    args.nodeModules = path.join(tmp, 'node_modules');
  }
  return tmp;
}

function loadNet(faceapi, NetClass, modelDir, name) {
  const manifest = JSON.parse(fs.readFileSync(path.join(modelDir, `${name}-weights_manifest.json`)));
  const buffers = manifest[0].paths.map((p) => fs.readFileSync(path.join(modelDir, p)));
  const joined = Buffer.concat(buffers);
  const data = joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength);
  const net = new NetClass();
  net.loadFromWeightMap(faceapi.tf.io.decodeWeights(data, manifest[0].weights));
  return net;
}

async function anchors(faceapi, net, image) {
  const { tf } = faceapi;
  const input = await faceapi.toNetInput(tf.tensor3d(image.data, [image.height, image.width, 3], 'int32'));
  const { boxes, scores } = net.forwardInput(input);
  const b = await boxes[0].data();
  const s = await scores[0].data();
  const strided = [];
  for (let k = 0; k < s.length; k += STRIDE) strided.push(k);
  const top = Array.from(s.keys()).sort((i, j) => s[j] - s[i]).slice(0, TOP);
  const pick = (idx, withIndices) => ({
    ...(withIndices ? { indices: idx } : {}),
    scores: { shape: [idx.length], data: b64(idx.map((k) => s[k])) },
    boxes: { shape: [idx.length, 4], data: b64(idx.flatMap((k) => Array.from(b.subarray(4 * k, 4 * k + 4)))) },
  });
  return { num_anchors: s.length, strided: pick(strided, false), top: pick(top, true) };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const photo = readPpm(args.photo);
  const tmp = setup(args);
  process.env.NODE_PATH = args.nodeModules;
  const require = createRequire(import.meta.url);
  require('node:module').Module._initPaths();
  const faceapi = require(path.join(args.packageDir, 'dist/face-api.node-wasm.js'));
  const { tf } = faceapi;
  await tf.setBackend('cpu');
  await tf.ready();
  const modelDir = path.join(args.packageDir, 'model');
  const pkg = JSON.parse(fs.readFileSync(path.join(args.packageDir, 'package.json')));
  const ssd = loadNet(faceapi, faceapi.SsdMobilenetv1, modelDir, 'ssd_mobilenetv1_model');
  const landmark = loadNet(faceapi, faceapi.FaceLandmark68Net, modelDir, 'face_landmark_68_model');

  const noiseEntries = [];
  for (const spec of NOISE) {
    noiseEntries.push({ ...spec, ...(await anchors(faceapi, ssd, { ...spec, data: noise(spec) })) });
  }
  const photoTensor = () => tf.tensor3d(photo.data, [photo.height, photo.width, 3], 'int32');
  const located = {};
  for (const minConfidence of [0.5, 0.05]) {
    const faces = await ssd.locateFaces(photoTensor(), { minConfidence, maxResults: 100 });
    located[String(minConfidence)] = faces.map((f) => ({
      score: f.score, x: f.box.x, y: f.box.y, width: f.box.width, height: f.box.height,
    }));
  }
  const points = landmark.runNet(await faceapi.toNetInput(photoTensor()));

  const out = {
    about: 'face-api TF.js (cpu backend) SSD MobileNet v1 and landmark outputs; written by scripts/faceapi_ssd_reference.mjs',
    package: `${pkg.name}@${pkg.version}`,
    tfjs: tf.version.tfjs || tf.version_core,
    backend: tf.getBackend(),
    inputs: 'noise: uint8 floor(256 * mulberry32(seed)), H x W x 3 in NHWC order; photo: base64 uint8 H x W x 3',
    anchor_stride: STRIDE,
    noise: noiseEntries,
    photo: {
      source: path.basename(args.photo),
      height: photo.height,
      width: photo.width,
      pixels: b64(photo.data, Uint8Array),
      ...(await anchors(faceapi, ssd, photo)),
      locate_faces: located,
      landmark_outputs: { shape: points.shape, data: b64(await points.data()) },
    },
  };
  fs.mkdirSync(path.dirname(args.out), { recursive: true });
  fs.writeFileSync(args.out, `${JSON.stringify(out, null, 1)}\n`);
  fs.rmSync(tmp, { recursive: true, force: true });
  console.log(`wrote ${args.out}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
