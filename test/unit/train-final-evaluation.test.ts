import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { useBackendUnderTest } from '../backend-under-test.js';
import type { DatasetItem } from '../../trainer-image/data/dataset.js';
import { evaluateCaptions } from '../../trainer-image/eval/evaluate.js';
import { createDecoder, disposeDecoder, initialValues, type DecoderConfig } from '../../trainer-image/model/decoder.js';
import { finalEvaluation, type GeneratedCaption } from '../../trainer-image/train/final-evaluation.js';
import type { Hyperparameters } from '../../trainer-image/train/hyperparameters.js';
import { freshState } from '../../trainer-image/train/loop.js';
import { ResourceLog } from '../../trainer-image/train/resource-log.js';
import { loopConfig, maxLen, trainingData, vocabulary } from '../train-fixture.js';

await useBackendUnderTest();

test("metrics.json carries the error analysis `captionrun evaluate` gives for the run's final captions", async () => {
  const data = trainingData();
  const c = loopConfig({ epochs: 1, batchSize: 4 });
  const cfg: DecoderConfig = { ...c.decoder, vocabSize: vocabulary.size, featureDim: 6 };
  const decoder = createDecoder(cfg, initialValues(cfg, c.training.seed));
  const hyper: Hyperparameters = { batchSize: 4, learningRate: 0.01, maxCaptionLength: maxLen, vocabularySize: vocabulary.size, auto: [] };
  const items: DatasetItem[] = data.val.table.ids.map((id, i) => ({
    id,
    split: 'dev',
    captions: data.val.references[i] as string[],
    image: async () => ({ kind: 'raw', data: new Uint8Array(8 * 8 * 3), width: 8, height: 8, channels: 3 }),
  }));
  const dir = mkdtempSync(join(tmpdir(), 'final-eval-'));
  const result = await finalEvaluation(decoder, data.val, items, vocabulary, freshState(c, hyper, decoder), { beamSize: 2, noRepeatNgramSize: 2, lengthPenalty: 0.5 }, { epoch: 1, by: 'last', metric: 'bleu4' }, dir, { name: 'inceptionv3', weights: 'random', inputSize: null }, new ResourceLog('cpu'));
  disposeDecoder(decoder);

  const metrics = JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8')) as { valBleu4: number; errorAnalysis: { images: number; worstByBleu4: unknown[] } };
  const written = JSON.parse(readFileSync(join(dir, 'captions.json'), 'utf8')) as { captions: GeneratedCaption[] };
  const evaluated = await evaluateCaptions(new Map(written.captions.map((g) => [g.id, g.references])), new Map(written.captions.map((g) => [g.id, g.caption])));
  assert.equal(metrics.errorAnalysis.images, 4);
  assert.deepEqual(metrics.errorAnalysis, JSON.parse(JSON.stringify(evaluated.errors)));
  assert.equal(metrics.valBleu4, evaluated.scores.bleu4);
  assert.equal(result.bleu4, metrics.valBleu4);
});
