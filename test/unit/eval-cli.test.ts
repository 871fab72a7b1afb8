// `captionrun evaluate` end to end (without GloVe, which the integration tests cover): input formats, the
// table, the JSON result, and errors that name the images at fault.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../../bin/captionrun', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'captionrun-eval-'));

function captionrun(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, 'evaluate', ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function file(name: string, value: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(value));
  return path;
}

const cocoRefs = file('refs.json', {
  images: [{ id: 1 }, { id: 2 }],
  annotations: [
    { image_id: 1, caption: 'A dog runs on the grass.' },
    { image_id: 1, caption: 'A brown dog running.' },
    { image_id: 2, caption: 'Two cats sleep on a bed.' },
  ],
});
const cocoCands = file('cands.json', [
  { image_id: 1, caption: 'a dog runs on the grass' },
  { image_id: 2, caption: 'two cats sleep on a bed' },
]);

test('COCO formats: prints the table and writes the JSON result; perfect captions score 1', () => {
  const out = join(dir, 'result.json');
  const r = captionrun('--refs', cocoRefs, '--candidates', cocoCands, '--out', out, '--no-similarity');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^BLEU-4\s+1\.0000$/m);
  assert.match(r.stdout, /^ROUGE-L\s+1\.0000$/m);
  assert.match(r.stdout, /^CIDEr-D\s+/m);
  const result = JSON.parse(readFileSync(out, 'utf8')) as { images: number; scores: { bleu1: number }; perImage: Array<{ id: string }> };
  assert.equal(result.images, 2);
  assert.ok(Math.abs(result.scores.bleu1 - 1) < 1e-8);
  assert.deepEqual(result.perImage.map((p) => p.id).sort(), ['1', '2']);
});

test('plain maps are read too and give the same scores', () => {
  const refs = file('refs-map.json', { 1: ['A dog runs on the grass.', 'A brown dog running.'], 2: ['Two cats sleep on a bed.'] });
  const cands = file('cands-map.json', { 1: 'a dog runs on the grass', 2: ['two cats sleep on a bed'] });
  const a = captionrun('--refs', refs, '--candidates', cands, '--no-similarity');
  const b = captionrun('--refs', cocoRefs, '--candidates', cocoCands, '--no-similarity');
  assert.equal(a.status, 0, a.stderr);
  assert.equal(a.stdout, b.stdout);
});

test('a candidate without references and an image without a candidate: exit 3 naming both', () => {
  const cands = file('cands-gap.json', [
    { image_id: 1, caption: 'a dog' },
    { image_id: 99, caption: 'a ghost' },
  ]);
  const r = captionrun('--refs', cocoRefs, '--candidates', cands, '--no-similarity');
  assert.equal(r.status, 3);
  assert.match(r.stderr, /without references: 99/);
  assert.match(r.stderr, /without a candidate: 2/);
  const allowed = captionrun('--refs', cocoRefs, '--candidates', cands, '--no-similarity', '--allow-missing');
  assert.equal(allowed.status, 0, allowed.stderr);
  assert.match(allowed.stdout, /^images\s+1$/m);
  assert.match(allowed.stderr, /left out/);
});

test('two candidates for one image is an input error naming it', () => {
  const cands = file('cands-dup.json', [
    { image_id: 1, caption: 'a dog' },
    { image_id: 1, caption: 'another dog' },
    { image_id: 2, caption: 'cats' },
  ]);
  const r = captionrun('--refs', cocoRefs, '--candidates', cands, '--no-similarity');
  assert.equal(r.status, 3);
  assert.match(r.stderr, /exactly one candidate caption: 1/);
});

test('usage errors exit 2; unreadable files exit 3', () => {
  assert.equal(captionrun('--refs', cocoRefs).status, 2);
  assert.equal(captionrun('--refs', cocoRefs, '--candidates', cocoCands, '--bogus').status, 2);
  const missing = captionrun('--refs', join(dir, 'nope.json'), '--candidates', cocoCands, '--no-similarity');
  assert.equal(missing.status, 3);
  assert.match(missing.stderr, /nope\.json: cannot read/);
  assert.equal(captionrun('--help').status, 0);
});

test('several candidate files: one comparison table, each captions.json scored against its own references', () => {
  const references = { 1: ['A dog runs on the grass.', 'A brown dog running.'], 2: ['Two cats sleep on a bed.'] };
  mkdirSync(join(dir, 'gru-run'), { recursive: true });
  writeFileSync(
    join(dir, 'gru-run', 'captions.json'),
    JSON.stringify({ beamSize: 3, captions: [{ id: '1', caption: 'a dog runs on the grass', references: references[1] }, { id: '2', caption: 'two cats sleep on a bed', references: references[2] }] }),
  );
  writeFileSync(join(dir, 'gru-run', 'resources.json'), JSON.stringify({ samples: [], wallSeconds: 1, peakRssBytes: 1, backend: 'wasm', captionLatencyMs: { p50: 12.2, p95: 20.7 } }));
  const llm = file('llm-captions.json', {
    captioner: { model: 'llava', endpoint: 'http://ollama:11434/v1', stats: { latencyMs: { p50: 812, p95: 1530 } } },
    captions: [{ id: '1', caption: 'A dog.', references: references[1], raw: 'Sure: A dog.' }, { id: '2', caption: 'Some cats on a bed.', references: references[2] }],
  });
  const out = join(dir, 'comparison.json');
  const r = captionrun('--candidates', join(dir, 'gru-run', 'captions.json'), '--candidates', llm, '--no-similarity', '--out', out);
  assert.equal(r.status, 0, r.stderr);
  const rows = new Map(r.stdout.split('\n').filter((l) => l !== '').map((l) => [l.split(/\s{2,}/)[0] ?? '', l.split(/\s{2,}/).slice(1)]));
  assert.deepEqual(rows.get(''), ['gru-run', 'LLM llava']);
  assert.equal(rows.get('images')?.join(' '), '2 2');
  assert.equal(rows.get('BLEU-4')?.[0], '1.0000');
  assert.ok(Number(rows.get('BLEU-1')?.[1]) < 1, 'the LLM\'s captions differ from the references');
  assert.deepEqual(rows.get('mean length (words)'), ['6.00', '3.50']);
  assert.deepEqual(rows.get('latency p50 / p95 (ms)'), ['12 / 21', '812 / 1530']);
  assert.deepEqual(rows.get('GloVe cosine (best ref)'), ['n/a', 'n/a']);
  const json = JSON.parse(readFileSync(out, 'utf8')) as Array<{ label: string; result: { scores: { bleu4: number } } }>;
  assert.deepEqual(json.map((j) => j.label), ['gru-run', 'LLM llava']);
  const noRefs = captionrun('--candidates', cocoCands, '--candidates', llm, '--no-similarity');
  assert.equal(noRefs.status, 2);
  assert.match(noRefs.stderr, /carries no references: give --refs/);
});
