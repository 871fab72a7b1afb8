// `captionrun report` end to end, read as a person would: two tiny runs trained here (GRU + Bahdanau,
// LSTM + Luong) plus a captions-only output standing in for an LLM, compared in one report that Debian's
// chromium opens from file:// with every network request blocked. No console errors, no failed or blocked
// requests, every chart's SVG has marks, the attention overlays and the comparison rows are all there.
// A full-page screenshot is left in the test's temp dir and its path printed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { CounterRng } from '../../trainer-image/util/rng.js';
import { startCli, tinySpec } from './train-helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const root = mkdtempSync(join(tmpdir(), 'captionrun-report-browser-'));
const env = { CAPTIONRUN_FEATURE_CACHE: join(root, 'features') };
const SCENES = { images: 60, seed: 5, imageSize: 64, maxObjects: 2 };
const ATTENTION_IMAGES = 3;

interface Captions {
  grid: { rows: number; cols: number };
  captions: Array<{ id: string; caption: string; references: string[]; attention: number[][] }>;
}

async function train(name: string, decoder: 'gru' | 'lstm', attention: 'bahdanau' | 'luong'): Promise<string> {
  const output = join(root, name);
  const spec = join(root, `${name}.yaml`);
  writeFileSync(spec, tinySpec({ name, checkpointDir: join(root, `${name}-checkpoints`), images: SCENES.images, epochs: 2, decoder, attention }));
  const run = startCli(['train', '--output', output, spec], env);
  assert.equal((await run.exit).code, 0, run.stderrText().slice(-3000));
  return output;
}

function writeEmbeddings(output: string, encoder: string, weights: string | undefined, seed: number): void {
  const { captions } = JSON.parse(readFileSync(join(output, 'captions.json'), 'utf8')) as Captions;
  const rng = new CounterRng(seed, 0);
  const pooled = captions.map(() => Array.from({ length: 24 }, () => rng.uniform()));
  writeFileSync(join(output, 'embeddings.json'), JSON.stringify({ encoder, ...(weights ? { weights } : {}), ids: captions.map((c) => c.id), pooled }));
}

test('the report opens offline in chromium with every chart, overlay and comparison row', { timeout: 600_000 }, async (t) => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)`);
  const gru = await train('gru-run', 'gru', 'bahdanau');
  const lstm = await train('lstm-run', 'lstm', 'luong');
  // The second run stands for one on DenseNet121 with explicitly random weights (no pretrained DenseNet
  // weights on these machines): its model.json says so, and the embedding plots must say it too.
  const lstmModel = JSON.parse(readFileSync(join(lstm, 'model.json'), 'utf8')) as { encoder: { name: string; weights: string } };
  lstmModel.encoder = { ...lstmModel.encoder, name: 'densenet121', weights: 'random' };
  writeFileSync(join(lstm, 'model.json'), JSON.stringify(lstmModel));
  // The trainer wrote images/, embeddings.json and resources.json; the stand-in DenseNet run gets random
  // embeddings of its own, and loses its resources.json so the report's "missing" path is exercised.
  writeEmbeddings(lstm, 'densenet121', undefined, 2);
  rmSync(join(lstm, 'resources.json'));
  // An LLM's captions: no model, no attention, no training; its captions are the first references.
  const llm = join(root, 'llm-captions');
  mkdirSync(llm);
  const gruCaptions = JSON.parse(readFileSync(join(gru, 'captions.json'), 'utf8')) as Captions;
  const lstmCaptions = JSON.parse(readFileSync(join(lstm, 'captions.json'), 'utf8')) as Captions;
  writeFileSync(join(llm, 'captions.json'), JSON.stringify({ captions: gruCaptions.captions.map((c) => ({ id: c.id, caption: c.references[0] ?? '', references: c.references })) }));

  const reportPath = join(root, 'report.html');
  const run = startCli(['report', gru, lstm, llm, '-o', reportPath, '--attention-images', String(ATTENTION_IMAGES)], {});
  const { code } = await run.exit;
  assert.equal(code, 0, run.stderrText().slice(-3000));
  assert.equal(run.stdout().trim(), reportPath);

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const consoleErrors: string[] = [];
    const failed: string[] = [];
    const blocked: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (err) => consoleErrors.push(err.message));
    page.on('requestfailed', (r) => {
      if (!blocked.includes(r.url())) failed.push(`${r.url()}: ${r.failure()?.errorText ?? ''}`);
    });
    await page.route('**/*', async (route) => {
      const url = route.request().url();
      if (url.startsWith('file:') || url.startsWith('data:')) return route.continue();
      blocked.push(url);
      return route.abort('blockedbyclient');
    });
    await page.goto(pathToFileURL(reportPath).href, { waitUntil: 'load' });

    assert.deepEqual(consoleErrors, [], 'no console errors');
    assert.deepEqual(failed, [], 'no failed requests');
    assert.deepEqual(blocked, [], 'the report asks for nothing over the network');
    assert.equal(await page.locator('script').count(), 0, 'no script');

    // Charts: 3 training curves, the trainer's 3 resource series (RSS, step time, checkpoint saves; no GPU on
    // these machines), PCA + t-SNE for 2 encoders.
    const marksPerChart = await page.locator('figure.chart svg').evaluateAll((svgs) => svgs.map((svg) => svg.querySelectorAll('g.role-mark > path').length));
    assert.equal(marksPerChart.length, 10, `charts: ${JSON.stringify(marksPerChart)}`);
    assert.ok(marksPerChart.every((n) => n > 0), `every chart has marks: ${JSON.stringify(marksPerChart)}`);
    const titles = await page.locator('figure.chart svg .role-title-text').allTextContents();
    assert.ok(titles.some((s) => /t-SNE — DenseNet121 — RANDOM weights/.test(s)), `titles: ${titles.join(' | ')}`);
    assert.ok(titles.some((s) => /PCA — InceptionV3 — pretrained weights/.test(s)), `titles: ${titles.join(' | ')}`);

    // Attention: one overlay per generated word of each trained model, for the first images, all decoded.
    const ids = gruCaptions.captions.slice(0, ATTENTION_IMAGES).map((c) => c.id);
    const expected = ids.reduce((n, id) => n + (gruCaptions.captions.find((c) => c.id === id)?.attention.length ?? 0) + (lstmCaptions.captions.find((c) => c.id === id)?.attention.length ?? 0), 0);
    assert.equal(await page.locator('.attention-image').count(), ATTENTION_IMAGES);
    const overlays = await page.locator('img.attention-overlay').evaluateAll((imgs) => imgs.map((img) => [(img as unknown as { naturalWidth: number }).naturalWidth, (img as unknown as { naturalHeight: number }).naturalHeight]));
    assert.equal(overlays.length, expected);
    assert.ok(overlays.every(([w, h]) => w === SCENES.imageSize && h === SCENES.imageSize), 'every overlay decoded at the image size');

    // The comparison table: one row per output, n/a where an output lacks the data.
    const rows = await page.locator('table.comparison tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => (td.textContent ?? '').trim())));
    assert.deepEqual(rows.map((r) => r[0]?.replace(/\/.*$/s, '').trim()), ['InceptionV3 + GRU + Bahdanau', 'DenseNet121 + LSTM + Luong', 'llm-captions']);
    assert.equal(rows[2]?.[9], 'n/a', 'the LLM output has no parameter count');
    assert.match(rows[0]?.[14] ?? '', /^(wasm|tensorflow)$/, 'the backend the trainer ran on');
    assert.equal(rows[1]?.[14], 'n/a', 'the LSTM run has no resources.json');
    assert.equal(rows[2]?.[5], '1.0000', 'captions equal to a reference score BLEU-4 1');
    assert.match(await page.locator('#missing-data').innerText(), /LSTM \+ Luong [^\n]*: no resources\.json/);

    const screenshot = join(root, 'report.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    t.diagnostic(`screenshot: ${screenshot}`);
    process.stdout.write(`report: ${reportPath}\nscreenshot: ${screenshot}\n`);
  } finally {
    await browser.close();
  }
});
