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
import path from 'node:path';

import {
  anchorPicks, b64, faceapiArgs, loadFaceapi, loadNet, noise, readPpm, writeFixture,
} from './faceapi_node.mjs';

const NOISE = [{ seed: 5, height: 40, width: 56 }, { seed: 6, height: 56, width: 40 }];
const STRIDE = 7; // anchors 0, 7, 14, ... are recorded
const TOP = 20;

function parseArgs(argv) {
  const args = faceapiArgs(argv, {
    fixture: 'faceapi_ssd_reference.json',
    usage: 'node faceapi_ssd_reference.mjs --photo FILE.ppm [--package-dir DIR] [--node-modules DIR] [--out FILE]',
    extraKeys: { '--photo': 'photo' },
  });
  if (!args.photo) {
    console.error('--photo FILE.ppm is required (see the header of this script)');
    process.exit(2);
  }
  return args;
}

async function anchors(faceapi, net, image) {
  const { tf } = faceapi;
  const input = await faceapi.toNetInput(tf.tensor3d(image.data, [image.height, image.width, 3], 'int32'));
  const { boxes, scores } = net.forwardInput(input);
  const b = await boxes[0].data();
  const s = await scores[0].data();
  const { strided, top } = anchorPicks(s, STRIDE, TOP);
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
  const { faceapi, tf, modelDir, pkg, tmp } = await loadFaceapi(args, 'faceapi-ssd-ref-');
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
  writeFixture(args, out, tmp);
}

main().catch((e) => { console.error(e); process.exit(1); });
