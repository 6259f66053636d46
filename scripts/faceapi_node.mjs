// face-api and TF.js in node, for the scripts that record face-api's
// outputs as test fixtures (faceapi_reference.mjs,
// faceapi_ssd_reference.mjs): the pinned versions, the flags they share,
// the temporary install, the nets loaded from face-api's own weight
// files, seeded pixels and base64 arrays.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { parseArgs } from './node_args.mjs';

export const PACKAGE = '@vladmandic/face-api';
export const VERSION = '1.7.15';
export const TFJS_VERSION = '4.22.0';

// --package-dir, --node-modules, --out (default tests/fixtures/FIXTURE)
// and `extraKeys`, as absolute paths.
export function faceapiArgs(argv, { fixture, usage, extraKeys = {} }) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  return parseArgs(argv, {
    keys: { '--package-dir': 'packageDir', '--node-modules': 'nodeModules', '--out': 'out', ...extraKeys },
    usage,
    defaults: { out: path.join(root, 'tests/fixtures', fixture) },
    resolve: true,
  });
}

export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// A seeded uint8 image floor(256 * mulberry32(seed)), H x W x 3.
export function noise({ seed, height, width }) {
  const rand = mulberry32(seed);
  const out = new Uint8Array(height * width * 3);
  for (let i = 0; i < out.length; i += 1) out[i] = Math.floor(rand() * 256);
  return out;
}

// The anchors recorded: every `stride`-th and the `top` best-scoring.
export function anchorPicks(scores, stride, top) {
  const strided = [];
  for (let k = 0; k < scores.length; k += stride) strided.push(k);
  const best = Array.from(scores.keys()).sort((i, j) => scores[j] - scores[i]).slice(0, top);
  return { strided, top: best };
}

// Little-endian base64 of `values` as `Type` (float32 by default).
export function b64(values, Type = Float32Array) {
  const f = Type.from(values);
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('base64');
}

// npm pack face-api and npm install TF.js into a temporary folder unless
// --package-dir / --node-modules name them; returns the folder.
function install(args, prefix) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
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

// face-api's node bundle on the TF.js cpu backend: {faceapi, tf,
// modelDir, pkg, tmp} (`tmp`: the temporary folder, for `writeFixture`).
export async function loadFaceapi(args, tmpPrefix) {
  const tmp = install(args, tmpPrefix);
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
  return { faceapi, tf, modelDir, pkg, tmp };
}

// A face-api net with the weights of `name`, decoded by TF.js itself.
export function loadNet(faceapi, NetClass, modelDir, name) {
  const manifest = JSON.parse(fs.readFileSync(path.join(modelDir, `${name}-weights_manifest.json`)));
  const buffers = manifest[0].paths.map((p) => fs.readFileSync(path.join(modelDir, p)));
  const joined = Buffer.concat(buffers);
  const data = joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength);
  const net = new NetClass();
  net.loadFromWeightMap(faceapi.tf.io.decodeWeights(data, manifest[0].weights));
  return net;
}

// Write `out` as JSON at args.out and remove the temporary folder.
export function writeFixture(args, out, tmp) {
  fs.mkdirSync(path.dirname(args.out), { recursive: true });
  fs.writeFileSync(args.out, `${JSON.stringify(out, null, 1)}\n`);
  fs.rmSync(tmp, { recursive: true, force: true });
  console.log(`wrote ${args.out}`);
}

// A binary 8-bit PPM (P6) file: {height, width, data (uint8 H x W x 3)}.
export function readPpm(file) {
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
