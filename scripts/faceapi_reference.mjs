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
import {
  b64, faceapiArgs, loadFaceapi, loadNet, mulberry32, writeFixture,
} from './faceapi_node.mjs';

const FC_COLUMNS = 32; // columns of the 256 -> 128 / 136 layers kept
const INPUTS = {
  recognition: { size: 150, seeds: [1, 2] },
  landmark: { size: 112, seeds: [3, 4] },
};

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

function batch(faceapi, { size, seeds }) {
  const images = seeds.map((s) => pixels(s, size));
  return {
    // A list of 3-D tensors: face-api's batch input.
    tensor: images.map((img) => faceapi.tf.tensor3d(img.values, [size, size, 3])),
    record: { size, seeds, checksums: images.map((img) => img.checksum) },
  };
}

async function main() {
  const args = faceapiArgs(process.argv.slice(2), {
    fixture: 'faceapi_reference.json',
    usage: 'node faceapi_reference.mjs [--package-dir DIR] [--node-modules DIR] [--out FILE]',
  });
  const { faceapi, tf, modelDir, pkg, tmp } = await loadFaceapi(args, 'faceapi-ref-');

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
  writeFixture(args, out, tmp);
}

main().catch((e) => { console.error(e); process.exit(1); });
