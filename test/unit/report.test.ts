// The report's parts that can fail on their own: charts render to SVG with marks, the attention blend has
// the image's size and shows where the weight is, text from run outputs is escaped, run outputs are read
// with optional files reported missing and malformed ones named, and the CLI's usage and input errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { CaptionrunError } from '../../lib/errors.js';
import { attentionOverlay, blendPixels, decodeImage, upsampleBilinear } from '../../trainer-image/report/attention-maps.js';
import { lineChartSpec, prefixIds, renderChart, scatterSpec } from '../../trainer-image/report/charts.js';
import { PCA } from 'ml-pca';
import { CounterRng } from '../../trainer-image/util/rng.js';
import { keywordClass, limitClasses, pca2d, principalComponents, tsne2d } from '../../trainer-image/report/embeddings.js';
import { escapeHtml, html, page, raw, table } from '../../trainer-image/report/html.js';
import { loadRunOutput, loadRunOutputs, parameterCount } from '../../trainer-image/report/load-outputs.js';
import { buildReport } from '../../trainer-image/report/report.js';

const root = mkdtempSync(join(tmpdir(), 'captionrun-report-unit-'));
const cli = fileURLToPath(new URL('../../bin/captionrun', import.meta.url));

/** Data marks of a rendered chart: the paths inside role-mark groups (not axes or legends). */
function dataMarks(svg: string): number {
  let n = 0;
  for (const m of svg.matchAll(/<g class="mark-[a-z]+ role-mark[^"]*"[^>]*>(.*?)<\/g>/gs)) n += (m[1]?.match(/<path /g) ?? []).length;
  return n;
}

test('a line chart spec renders to an SVG with one line per model', async () => {
  const data = [0, 1, 2].flatMap((epoch) => [
    { model: 'GRU', epoch, value: 3 - epoch },
    { model: 'LSTM', epoch, value: 3.2 - epoch },
  ]);
  const svg = await renderChart(lineChartSpec({ title: 'Loss', data, models: ['GRU', 'LSTM'], x: { field: 'epoch', title: 'epoch', integer: true }, y: { field: 'value', title: 'loss' } }));
  assert.match(svg, /^<svg /);
  assert.match(svg, /class="mark-line role-mark/);
  assert.ok(dataMarks(svg) >= 2, 'a path per line');
  assert.match(svg, />GRU</);
  assert.match(svg, />Loss</);
});

test('a scatter spec renders a symbol per point, and text in it is escaped', async () => {
  const data = Array.from({ length: 5 }, (_, i) => ({ x: i, y: i * i, class: i % 2 ? 'dog' : 'cat <b>', id: String(i) }));
  const svg = await renderChart(scatterSpec({ title: 'PCA <x>', data, xTitle: 'PC1', yTitle: 'PC2', classes: ['dog', 'cat <b>'] }));
  assert.equal(dataMarks(svg), 5);
  assert.doesNotMatch(svg, /<b>|<x>/);
});

test('charts refuse to load data from a URL', async () => {
  await assert.rejects(renderChart({ data: { url: 'http://127.0.0.1:9/data.json' }, mark: 'point', encoding: { x: { field: 'a', type: 'quantitative' } } }), /inline/);
});

test('prefixIds keeps ids unique across the SVGs of one page', () => {
  const svg = '<svg><clipPath id="clip1"><rect/></clipPath><g clip-path="url(#clip1)"></g><use href="#clip1"/></svg>';
  assert.equal(prefixIds(svg, 'c7-'), '<svg><clipPath id="c7-clip1"><rect/></clipPath><g clip-path="url(#c7-clip1)"></g><use href="#c7-clip1"/></svg>');
});

test('bilinear upsampling keeps region values at region centres and a constant grid constant', () => {
  const up = upsampleBilinear([1, 2, 3, 4], { rows: 2, cols: 2 }, 4, 4);
  assert.equal(up[0], 1);
  assert.equal(up[3], 2);
  assert.equal(up[12], 3);
  assert.equal(up[15], 4);
  assert.ok((up[5] ?? 0) > 1 && (up[5] ?? 0) < 4);
  assert.ok(upsampleBilinear(Array(9).fill(0.2), { rows: 3, cols: 3 }, 7, 5).every((v) => Math.abs(v - 0.2) < 1e-6));
});

async function greyPng(width: number, height: number, level = 128): Promise<Buffer> {
  return sharp(Buffer.alloc(width * height * 3, level), { raw: { width, height, channels: 3 } }).png().toBuffer();
}

test('the heat-map blend has the image\'s size and lights the attended region', async () => {
  const image = await decodeImage(await greyPng(90, 60));
  const png = await attentionOverlay(image, [0, 0, 0, 0, 0, 1], { rows: 2, cols: 3 });
  const meta = await sharp(png).metadata();
  assert.equal(meta.format, 'png');
  assert.deepEqual([meta.width, meta.height], [90, 60]);
  const rgb = blendPixels(image, [0, 0, 0, 0, 0, 1], { rows: 2, cols: 3 });
  const at = (x: number, y: number): number => (rgb[(y * 90 + x) * 3] ?? 0) + (rgb[(y * 90 + x) * 3 + 1] ?? 0);
  assert.ok(at(80, 50) > at(10, 10) + 100, 'the bottom-right region is brighter than the unattended top-left');
  // Uniform attention says nothing about where: the image is left as it is.
  const uniform = blendPixels(image, Array(6).fill(1 / 6), { rows: 2, cols: 3 });
  assert.ok(uniform.every((v) => v === 128));
});

test('large images are scaled to at most 224 px on the long side', async () => {
  const image = await decodeImage(await greyPng(640, 320));
  assert.deepEqual([image.width, image.height], [224, 112]);
});

test('escapeHtml escapes the five characters; html`` escapes values but keeps Html', () => {
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  assert.equal(html`<p title="${'"x"'}">${'<b>'}${raw('<i>ok</i>')}${['<', 1]}${null}${false}</p>`.value, '<p title="&quot;x&quot;">&lt;b&gt;<i>ok</i>&lt;1</p>');
  assert.match(table(['<h>'], [['<c>']]).value, /<th>&lt;h&gt;<\/th>.*<td>&lt;c&gt;<\/td>/s);
  const doc = page({ title: '<script>alert(1)</script>', sections: [{ id: 's', title: 'T&T', body: '</section><script>' }] });
  assert.doesNotMatch(doc, /<script/);
  assert.match(doc, /T&amp;T/);
});

test('keyword classes: the most frequent noun, or the first colour word; rare classes fold into "other"', () => {
  assert.equal(keywordClass(['A black dog runs.', 'Two dogs play on the grass.', 'A dog with a ball.']), 'dog');
  assert.equal(keywordClass(['A black dog runs.'], 'colour'), 'black');
  assert.equal(keywordClass(['a small red circle left of a large blue square']), 'circle');
  assert.equal(keywordClass(['something happened']), 'other');
  assert.deepEqual(limitClasses(['a', 'b', 'a', 'c', 'a', 'b'], 2), { classes: ['a', 'b', 'a', 'other', 'a', 'b'], legend: ['a', 'b', 'other'] });
});

test('PCA finds the direction of largest spread; t-SNE is seeded and keeps one point per row', () => {
  const rows = Array.from({ length: 12 }, (_, i) => [i, 0.1 * (i % 3), 0.05 * (i % 2)]);
  const p = pca2d(rows);
  assert.equal(p.points.length, 12);
  assert.ok(p.explained[0] > 0.9);
  const a = tsne2d(rows, { iterations: 50 });
  const b = tsne2d(rows, { iterations: 50 });
  assert.equal(a.points.length, 12);
  assert.deepEqual(a.points, b.points, 'the same features give the same picture');
});

test('with fewer images than feature dimensions, PCA through the Gram matrix gives ml-pca\'s scores and variance', () => {
  const rng = new CounterRng(3, 0);
  const rows = Array.from({ length: 20 }, (_, i) => Array.from({ length: 60 }, (_, j) => rng.uniform() + (i % 3 === j % 3 ? 2 : 0) + (j < 5 ? i * 0.3 : 0)));
  const reference = new PCA(rows);
  const expected = reference.predict(rows, { nComponents: 3 }).to2DArray();
  const dual = principalComponents(rows, 3);
  for (let c = 0; c < 3; c++) {
    // An eigenvector's sign is arbitrary.
    const sign = Math.sign(expected[0]?.[c] ?? 0) === Math.sign(dual.scores[0]?.[c] ?? 0) ? 1 : -1;
    for (let i = 0; i < rows.length; i++) assert.ok(Math.abs((expected[i]?.[c] ?? 0) - sign * (dual.scores[i]?.[c] ?? 0)) < 1e-9, `score ${i}, component ${c}`);
    assert.ok(Math.abs((reference.getExplainedVariance()[c] ?? 0) - (dual.explained[c] ?? 0)) < 1e-12);
  }
});

interface FixtureOptions {
  name: string;
  cell?: string;
  caption?: string;
  withModel?: boolean;
  captionsJson?: unknown;
}

async function fixture(o: FixtureOptions): Promise<string> {
  const dir = join(root, o.name);
  mkdirSync(join(dir, 'images'), { recursive: true });
  const captions = o.captionsJson ?? {
    beamSize: 2,
    grid: { rows: 2, cols: 2 },
    captions: [
      { id: 'img-1', caption: o.caption ?? 'a red circle', references: ['a red circle', 'a small red circle'], attention: [[0.7, 0.1, 0.1, 0.1], [0.1, 0.7, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]] },
      { id: 'img-2', caption: 'a blue square', references: ['a large blue square'], attention: [[0.1, 0.1, 0.1, 0.7], [0.1, 0.1, 0.7, 0.1], [0.4, 0.2, 0.2, 0.2]] },
    ],
  };
  writeFileSync(join(dir, 'captions.json'), JSON.stringify(captions));
  if (o.withModel !== false) {
    writeFileSync(
      join(dir, 'model.json'),
      JSON.stringify({ format: 1, encoder: { name: 'inceptionv3', weights: 'random', inputSize: null }, decoder: { cell: o.cell ?? 'gru', attention: 'bahdanau' }, parameters: [['embed', [20, 4]], ['b', [4]]] }),
    );
  }
  writeFileSync(join(dir, 'images', 'img-1.png'), await greyPng(32, 24, 90));
  return dir;
}

test('run outputs: optional files are reported missing, labels come from model.json or the directory', async () => {
  const gru = await fixture({ name: 'out-gru' });
  const plain = await fixture({ name: 'llm-captions', withModel: false });
  const [a, b] = await loadRunOutputs([gru, plain]);
  assert.equal(a?.label, 'InceptionV3 + GRU + Bahdanau');
  assert.equal(b?.label, 'llm-captions');
  assert.deepEqual(a?.missing, ['metrics.json', 'resources.json', 'embeddings.json']);
  assert.deepEqual(b?.missing, ['model.json', 'metrics.json', 'resources.json', 'embeddings.json']);
  assert.equal(a?.images.size, 1);
  assert.equal(parameterCount(a?.model ?? { encoder: { name: '', weights: '', inputSize: null }, decoder: { cell: '', attention: '' }, parameters: [] }), 84);
  const [x, y] = await loadRunOutputs([gru, gru]);
  assert.notEqual(x?.label, y?.label, 'two outputs with the same model still get distinct labels');
});

test('run outputs: a missing captions.json or a malformed file is an input error naming the file and field', async () => {
  const empty = join(root, 'empty');
  mkdirSync(empty);
  await assert.rejects(loadRunOutput(empty), (err: CaptionrunError) => err.exitCode === 3 && /captions\.json/.test(err.describe()));
  await assert.rejects(loadRunOutput(join(root, 'nowhere')), (err: CaptionrunError) => err.exitCode === 3 && /nowhere/.test(err.describe()));
  const bad = await fixture({ name: 'bad-attention', captionsJson: { grid: { rows: 2, cols: 2 }, captions: [{ id: 'x', caption: 'a b', references: [], attention: [[1, 0, 0]] }] } });
  await assert.rejects(loadRunOutput(bad), (err: CaptionrunError) => err.exitCode === 3 && /captions\.json: captions\[0\]\.attention\[0\]: has 3 weights/.test(err.describe()));
  const badJson = await fixture({ name: 'bad-json' });
  writeFileSync(join(badJson, 'metrics.json'), '{"history": [');
  await assert.rejects(loadRunOutput(badJson), (err: CaptionrunError) => err.exitCode === 3 && /metrics\.json: not valid JSON/.test(err.describe()));
  const badImage = await fixture({ name: 'bad-image' });
  writeFileSync(join(badImage, 'images', 'img-1.png'), 'not a png');
  await assert.rejects(loadRunOutput(badImage), (err: CaptionrunError) => err.exitCode === 3 && /img-1\.png: not a readable image/.test(err.describe()));
});

test('the report escapes captions and names from run outputs and says what is missing', async () => {
  const evil = await fixture({ name: 'evil-<img src=x onerror=alert(1)>', caption: '<script>alert("x")</script> & more', withModel: false });
  const gru = await fixture({ name: 'report-gru' });
  const outputs = await loadRunOutputs([gru, evil]);
  const doc = await buildReport(outputs, { vectors: null, attentionImages: 2 });
  assert.doesNotMatch(doc, /<script/i);
  assert.doesNotMatch(doc, /<img src=x/);
  assert.match(doc, /&lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt; &amp; more/);
  assert.match(doc, /no <code>resources\.json<\/code>/);
  assert.match(doc, /no <code>model\.json<\/code>/);
  // img-1 has an image: one overlay per generated word, for both outputs.
  assert.equal(doc.match(/class="attention-overlay"/g)?.length, 6);
  assert.match(doc, /n\/a/);
});

/** A captions file as caption-llm writes it: one more model, with the raw answers and the endpoint's cost. */
function llmCaptionsFile(name: string): string {
  const file = join(root, name);
  writeFileSync(
    file,
    JSON.stringify({
      captioner: { kind: 'openai-chat-completions', endpoint: 'http://vllm:8000/v1', model: 'llava-1.5-7b', prompt: 'p', parameters: { maxTokens: 64, temperature: 0, seed: 1 }, stats: { images: 3, captioned: 2, failed: 1, cacheHits: 0, requests: 3, latencyMs: { p50: 812.4, p95: 1530 }, tokens: { prompt: 1200, completion: 20 }, failuresByCause: { timeout: 1 }, wallSeconds: 2 } },
      captions: [
        { id: 'img-1', caption: 'A red circle on white.', references: ['a red circle', 'a small red circle'], raw: 'Sure! Here is a caption:\nA red circle on white. It is round.' },
        { id: 'img-2', caption: 'A blue square.', references: ['a large blue square'], raw: 'A blue square.' },
      ],
      failures: [{ id: 'img-3', cause: 'timeout', message: 'no complete answer within 60 s' }],
    }),
  );
  return file;
}

test('an LLM captions file is one more model: its label, latency, endpoint, raw answers and failures are shown', async () => {
  const gru = await fixture({ name: 'with-llm-gru' });
  const outputs = await loadRunOutputs([gru, llmCaptionsFile('llm-captions.json')]);
  assert.deepEqual(outputs.map((o) => o.label), ['InceptionV3 + GRU + Bahdanau', 'LLM llava-1.5-7b']);
  assert.deepEqual(outputs[1]?.missing, [], 'a captions file has no run files to miss');
  const doc = await buildReport(outputs, { vectors: null });
  const llmRow = /<tr>(?:(?!<\/tr>).)*LLM llava-1\.5-7b(?:(?!<\/tr>).)*<\/tr>/s.exec(doc.slice(doc.indexOf('class="comparison"')))?.[0] ?? '';
  assert.match(llmRow, /812 \/ 1530 ms/);
  assert.match(llmRow, /http:\/\/vllm:8000\/v1/);
  assert.match(doc, /answer: “Sure! Here is a caption:\nA red circle on white\. It is round\.”/);
  assert.doesNotMatch(doc, /answer: “A blue square\.”/, 'an answer that is its caption is not repeated');
  assert.match(doc, /LLM llava-1\.5-7b<\/strong>: 1 of 3 images got no caption from the endpoint \(1 timeout\)/);
  await assert.rejects(loadRunOutput(join(root, 'no-such-captions.json')), (err: CaptionrunError) => err.exitCode === 3 && /no such captions file/.test(err.describe()));
});

function captionrun(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, 'report', ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('captionrun report: --help, usage errors exit 2, unreadable outputs exit 3 naming the file', async () => {
  const help = captionrun('--help');
  assert.equal(help.status, 0);
  assert.match(help.stdout, /Usage: captionrun report RUN_OUTPUT\.\.\. -o report\.html/);
  assert.equal(captionrun(root).status, 2, 'no -o');
  assert.equal(captionrun('-o', join(root, 'r.html')).status, 2, 'no outputs');
  const missing = captionrun('-o', join(root, 'r.html'), '--no-similarity', join(root, 'does-not-exist'));
  assert.equal(missing.status, 3);
  assert.match(missing.stderr, /does-not-exist/);
  const ok = captionrun('-o', join(root, 'sub', 'r.html'), '--no-similarity', await fixture({ name: 'cli-gru' }));
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stdout.trim(), join(root, 'sub', 'r.html'));
  assert.match(ok.stderr, /"component":"report".*"msg":"wrote report"/);
});
