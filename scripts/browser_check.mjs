// Drive the demo page (docs/demo/) in a real headless Chromium.
//
// Launches the Chromium of npm's @sparticuz/chromium with puppeteer-core,
// opens URL, waits for the models to load, uploads IMAGE through the
// page's file input, waits for its results and prints JSON:
// {results: window.ferzoo.results, backend, load_ms, analyse_ms,
// ms_per_image (with --time N: model.predict on one 112 x 112 crop, N
// runs after a warm-up; with --npy NAME, the uint8 (N, H, W, 3) images of
// the .npy file at NAME (a URL relative to the page), each a batch of one,
// N passes, and `probabilities` of the first pass), console: [...]}.
// With --screenshot FILE it saves the page as a PNG. With --webcam 1 it
// then starts the page's webcam (Chromium's fake camera: a test pattern
// without faces), waits for the first analysed frame, stops it and adds
// `webcam: {width, height, faces, status}`.
//
//   node scripts/browser_check.mjs --url http://127.0.0.1:8000/ \
//       --image face.png --node-modules build/js/node_modules \
//       [--screenshot page.png] [--time 20 [--npy faces.npy]]
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

import { parseArgs as parseFlags } from './node_args.mjs';

function parseArgs(argv) {
  const args = parseFlags(argv, {
    keys: {
      '--url': 'url', '--image': 'image', '--node-modules': 'nodeModules',
      '--screenshot': 'screenshot', '--time': 'time', '--npy': 'npy',
      '--webcam': 'webcam',
    },
    usage: 'node browser_check.mjs --url URL --image FILE --node-modules DIR [--screenshot FILE] [--time N]',
    defaults: { time: 0 },
    required: ['url', 'image', 'nodeModules'],
  });
  args.time = Number(args.time);
  return args;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const modules = path.resolve(args.nodeModules);
  const require = createRequire(path.join(modules, 'noop.js'));
  const puppeteer = require('puppeteer-core');
  const chromiumEntry = path.join(modules, '@sparticuz/chromium/build/index.js');
  const chromium = (await import(pathToFileURL(chromiumEntry).href)).default;
  const fakeCamera = ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'];
  const browser = await puppeteer.launch({
    args: [...chromium.args, ...(args.webcam ? fakeCamera : [])],
    executablePath: await chromium.executablePath(),
    headless: true,
    defaultViewport: { width: 1100, height: 720 },
  });
  const logs = [];
  try {
    const page = await browser.newPage();
    page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    const failed = new Promise((_, reject) => {
      page.on('pageerror', (e) => { logs.push(`pageerror: ${e.message}`); reject(e); });
    });
    failed.catch(() => {});
    const wait = (fn) => Promise.race([page.waitForFunction(fn, { timeout: 120000 }), failed]);
    const t0 = Date.now();
    await page.goto(args.url, { waitUntil: 'load' });
    await wait(() => ['ready', 'error'].includes(document.body.dataset.state));
    const loadMs = Date.now() - t0;
    if (await page.evaluate(() => document.body.dataset.state) === 'error') {
      throw new Error(`page failed to load: ${await page.$eval('#status', (e) => e.textContent)}`);
    }
    const t1 = Date.now();
    const input = await page.$('#file');
    await input.uploadFile(path.resolve(args.image));
    await wait(() => ['done', 'error'].includes(document.body.dataset.state));
    const analyseMs = Date.now() - t1;
    const status = await page.$eval('#status', (e) => e.textContent);
    if (await page.evaluate(() => document.body.dataset.state) === 'error') {
      throw new Error(`page failed on the image: ${status}`);
    }
    const results = await page.evaluate(() => window.ferzoo.results);
    if (args.screenshot) await page.screenshot({ path: args.screenshot, fullPage: true });
    let timing = { ms: null, probabilities: null };
    if (args.time > 0) {
      timing = await page.evaluate(async (n, npy) => {
        const { tf } = faceapi;
        let images;
        if (npy) {
          const buf = new Uint8Array(await (await fetch(npy)).arrayBuffer());
          const major = buf[6];
          const view = new DataView(buf.buffer);
          const len = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
          const start = (major === 1 ? 10 : 12) + len;
          const header = new TextDecoder('latin1').decode(buf.subarray(major === 1 ? 10 : 12, start));
          const shape = header.match(/'shape':\s*\(([^)]*)\)/)[1].split(',').filter((v) => v.trim()).map(Number);
          const size = shape[1] * shape[2] * 3;
          images = [];
          for (let i = 0; i < shape[0]; i += 1) {
            const data = Int32Array.from(buf.subarray(start + i * size, start + (i + 1) * size));
            images.push(tf.tensor4d(data, [1, shape[1], shape[2], 3], 'int32'));
          }
        } else {
          const [h, w] = window.ferzoo.metadata.image_size;
          images = [tf.tensor4d(new Int32Array(h * w * 3).map((_, i) => (i * 7) % 256), [1, h, w, 3], 'int32')];
        }
        const once = async (x) => {
          const y = window.ferzoo.model.predict(x);
          const values = Array.from(await y.data());
          y.dispose();
          return values;
        };
        const probabilities = [];
        for (const x of images) probabilities.push(await once(x)); // warm-up
        const start = performance.now();
        for (let r = 0; r < n; r += 1) for (const x of images) await once(x);
        const ms = (performance.now() - start) / (n * images.length);
        tf.dispose(images);
        return { ms, probabilities };
      }, args.time, args.npy || null);
    }
    let webcam = null;
    if (args.webcam) {
      await page.evaluate(() => { document.body.dataset.state = 'ready'; window.ferzoo.results = null; });
      await page.click('#webcam');
      await wait(() => ['done', 'error'].includes(document.body.dataset.state) && (
        document.body.dataset.state === 'error' || window.ferzoo.results !== null));
      webcam = await page.evaluate(() => ({
        state: document.body.dataset.state,
        status: document.getElementById('status').textContent,
        button: document.getElementById('webcam').textContent,
        width: window.ferzoo.results && window.ferzoo.results.width,
        height: window.ferzoo.results && window.ferzoo.results.height,
        faces: window.ferzoo.results && window.ferzoo.results.faces.length,
      }));
      await page.click('#webcam');
    }
    console.log(JSON.stringify({
      webcam,
      status, results, backend: results.backend, load_ms: loadMs, analyse_ms: analyseMs,
      ms_per_image: timing.ms, probabilities: timing.probabilities, browser: await browser.version(), console: logs,
    }));
  } catch (e) {
    console.error(String(e.stack || e));
    console.error(logs.join('\n'));
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

main();
