// Record face-api (TF.js, cpu backend) outputs for seeded inputs: the
// parity fixture of ferzoo's converted face-api nets.
//
// Runs face-api's own nets (FaceRecognitionNet, FaceLandmark68Net,
// FaceExpressionNet from dist/face-api.node-wasm.js) on the TF.js cpu
// backend, with weights decoded by TF.js itself (tf.io.decodeWeights),
// and writes tests/fixtures/faceapi_reference.json: the outputs, a slice
// of each final linear layer (ferzoo's backbones stop before it) and the
// input recipe. Inputs are uint8 pixels floor(256 * mulberry32(seed)),
// drawn in NHWC order; tests/backbones re-create them in NumPy and check
// the stored checksums. Float arrays are base64 little-endian float32.
//
// Invocations (nothing is installed into the repository):
//   node scripts/faceapi_reference.mjs                 # npm pack + install in a temp dir
//   node scripts/faceapi_reference.mjs --package-dir /work/faceapi/package
//   node scripts/faceapi_reference.mjs --package-dir DIR --node-modules /tmp/fa/node_modules --out FILE
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE = '@vladmandic/face-api';
const VERSION = '1.7.15';
const TFJS_VERSION = '4.22.0';
const FC_COLUMNS = 32; // columns of the 256 -> 128 / 136 layers kept
const INPUTS = {
  recognition: { size: 150, seeds: [1, 2] },
  landmark: { size: 112, seeds: [3, 4] },
};

function parseArgs(argv) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const args = { out: path.join(root, 'tests/fixtures/faceapi_reference.json') };
  for (let i = 0; i < argv.length; i += 2) {
    const key = { '--package-dir': 'packageDir', '--node-modules': 'nodeModules', '--out': 'out' }[argv[i]];
    if (!key || argv[i + 1] === undefined) {
      console.error(`usage: node faceapi_reference.mjs [--package-dir DIR] [--node-modules DIR] [--out FILE]; got ${argv[i]}`);
      process.exit(2);
    }
    args[key] = path.resolve(argv[i + 1]);
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

function pixels(seed, size) {
  const rand = mulberry32(seed);
  const out = new Float32Array(size * size * 3);
  let checksum = 0;
  for (let i = 0; i < out.length; i += 1) {
    out[i] = Math.floor(rand() * 256);
    checksum += out[i] * ((i % 7) + 1);
  }
  return { values: out, checksum };
}

function b64(floats) {
  const f = Float32Array.from(floats);
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('base64');
}

function setup(args) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'faceapi-ref-'));
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

function batch(faceapi, { size, seeds }) {
  const images = seeds.map((s) => pixels(s, size));
  return {
    // A list of 3-D tensors: face-api's batch input.
    tensor: images.map((img) => faceapi.tf.tensor3d(img.values, [size, size, 3])),
    record: { size, seeds, checksums: images.map((img) => img.checksum) },
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const tmp = setup(args);
  // face-api's bundle requires @tensorflow/tfjs from its own folder: let
  // node also look in the temporary node_modules.
  process.env.NODE_PATH = args.nodeModules;
  const require = createRequire(import.meta.url);
  require('node:module').Module._initPaths();
  const faceapi = require(path.join(args.packageDir, 'dist/face-api.node-wasm.js'));
  const { tf } = faceapi;
  await tf.setBackend('cpu');
  await tf.ready();
  const modelDir = path.join(args.packageDir, 'model');
  const pkg = JSON.parse(fs.readFileSync(path.join(args.packageDir, 'package.json')));

  const recognition = loadNet(faceapi, faceapi.FaceRecognitionNet, modelDir, 'face_recognition_model');
  const landmark = loadNet(faceapi, faceapi.FaceLandmark68Net, modelDir, 'face_landmark_68_model');
  const expression = loadNet(faceapi, faceapi.FaceExpressionNet, modelDir, 'face_expression_model');

  const rec = batch(faceapi, INPUTS.recognition);
  const lmk = batch(faceapi, INPUTS.landmark);
  const descriptors = recognition.forwardInput(await faceapi.toNetInput(rec.tensor));
  const points = landmark.runNet(await faceapi.toNetInput(lmk.tensor));
  const probabilities = expression.forwardInput(await faceapi.toNetInput(lmk.tensor));
  const fc = recognition.params.fc.slice([0, 0], [256, FC_COLUMNS]);
  const lfc = landmark.params.fc;

  const out = {
    about: 'face-api TF.js (cpu backend) outputs for seeded inputs; written by scripts/faceapi_reference.mjs',
    package: `${pkg.name}@${pkg.version}`,
    tfjs: tf.version.tfjs || tf.version_core,
    backend: tf.getBackend(),
    inputs: 'uint8 floor(256 * mulberry32(seed)), NHWC order; checksum = sum(x[i] * (i % 7 + 1))',
    recognition: {
      ...rec.record,
      descriptors: { shape: descriptors.shape, data: b64(await descriptors.data()) },
      fc_columns: { shape: fc.shape, data: b64(await fc.data()) },
    },
    landmark: {
      ...lmk.record,
      outputs: { shape: points.shape, data: b64(await points.data()) },
      fc_weights_columns: {
        shape: [256, FC_COLUMNS], data: b64(await lfc.weights.slice([0, 0], [256, FC_COLUMNS]).data()),
      },
      fc_bias: { shape: lfc.bias.shape, data: b64(await lfc.bias.data()) },
    },
    expression: {
      ...lmk.record,
      order: ['neutral', 'happy', 'sad', 'angry', 'fearful', 'disgusted', 'surprised'],
      probabilities: { shape: probabilities.shape, data: b64(await probabilities.data()) },
    },
  };
  fs.mkdirSync(path.dirname(args.out), { recursive: true });
  fs.writeFileSync(args.out, `${JSON.stringify(out, null, 1)}\n`);
  fs.rmSync(tmp, { recursive: true, force: true });
  console.log(`wrote ${args.out}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
