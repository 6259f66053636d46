// Run a ferzoo TF.js export (`ferzoo-export --format tfjs`) in node.
//
// Loads model.json and its shards with @tensorflow/tfjs (no tfjs-node:
// its native binary is downloaded at install time), runs the images of a
// .npy file (uint8, (N, H, W, 3); each image is one batch of 1, as they
// may differ in size... here they share it) and prints JSON:
// {backend, metadata, probabilities, ms_per_image}.
//
// Invocations (NODE_MODULES: a folder with @tensorflow/tfjs and
// @tensorflow/tfjs-backend-wasm 4.22, e.g. `npm install --prefix DIR ...`;
// tests/deploy/js.py installs them into build/js):
//   node scripts/tfjs_predict.mjs --model exported/tfjs --images x.npy \
//       --node-modules build/js/node_modules [--backend wasm|cpu] [--repeat N]
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import { parseArgs as parseFlags } from './node_args.mjs';

function parseArgs(argv) {
  const args = parseFlags(argv, {
    keys: {
      '--model': 'model', '--images': 'images', '--node-modules': 'nodeModules',
      '--backend': 'backend', '--repeat': 'repeat',
    },
    usage: 'node tfjs_predict.mjs --model DIR --images FILE.npy --node-modules DIR [--backend wasm|cpu] [--repeat N]',
    defaults: { backend: 'wasm', repeat: 1 },
    required: ['model', 'images', 'nodeModules'],
  });
  args.repeat = Number(args.repeat);
  return args;
}

// A .npy file of uint8 (N, H, W, 3) -> {shape, data: Int32Array}.
function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const header = buf.toString('latin1', major === 1 ? 10 : 12, start);
  if (!/'descr':\s*'[|<]?u1'/.test(header) || /'fortran_order':\s*True/.test(header)) {
    throw new Error(`${file}: expected C-ordered uint8, got ${header}`);
  }
  const shape = header.match(/'shape':\s*\(([^)]*)\)/)[1].split(',').filter((s) => s.trim()).map(Number);
  return { shape, data: Int32Array.from(buf.subarray(start)) };
}

function loadArtifacts(dir) {
  const modelJson = JSON.parse(fs.readFileSync(path.join(dir, 'model.json')));
  const groups = modelJson.weightsManifest;
  const specs = groups.flatMap((g) => g.weights);
  const data = Buffer.concat(groups.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(dir, p)))));
  return {
    modelTopology: modelJson.modelTopology,
    format: modelJson.format,
    generatedBy: modelJson.generatedBy,
    convertedBy: modelJson.convertedBy,
    signature: modelJson.signature,
    userDefinedMetadata: modelJson.userDefinedMetadata,
    weightSpecs: specs,
    weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const require = createRequire(path.join(path.resolve(args.nodeModules), 'noop.js'));
  const tf = require('@tensorflow/tfjs');
  if (args.backend === 'wasm') {
    const wasm = require('@tensorflow/tfjs-backend-wasm');
    const dist = path.join(path.resolve(args.nodeModules), '@tensorflow/tfjs-backend-wasm/dist/');
    wasm.setWasmPaths(dist);
  }
  await tf.setBackend(args.backend);
  await tf.ready();
  const model = await tf.loadGraphModel({ load: async () => loadArtifacts(args.model) });
  const { shape, data } = readNpy(args.images);
  const [n, h, w] = shape;
  const size = h * w * 3;
  const probabilities = [];
  let elapsed = 0;
  for (let r = 0; r < args.repeat; r += 1) {
    for (let i = 0; i < n; i += 1) {
      const start = performance.now();
      const x = tf.tensor4d(data.subarray(i * size, (i + 1) * size), [1, h, w, 3], 'int32');
      const y = model.predict(x);
      const values = Array.from(await y.data());
      elapsed += performance.now() - start;
      tf.dispose([x, y]);
      if (r === 0) probabilities.push(values);
    }
  }
  console.log(JSON.stringify({
    backend: tf.getBackend(),
    tfjs: tf.version.tfjs,
    metadata: model.metadata,
    probabilities,
    ms_per_image: elapsed / (n * args.repeat),
  }));
}

main().catch((e) => { console.error(e); process.exit(1); });
