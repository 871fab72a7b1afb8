// Quality gate on synthetic scenes with a fixed seed, real InceptionV3 features (139 px, 3x3 map, cached
// on disk across runs) and a small decoder on the wasm backend: every cell x attention combination must
// caption held-out scenes with corpus BLEU-4 >= 0.6, and for every generated object word (size, colour,
// shape) put at least twice the box's share of the image inside the named object's box (uniform attention
// scores exactly 1x). Scenes hold one object each: two-object scenes need far more steps than CI allows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { validateRun } from '../../lib/api/validate.js';
import { createLogger } from '../../lib/telemetry/logger.js';
import { useBackendUnderTest } from '../backend-under-test.js';
import { createDecoder, disposeDecoder, initialValues } from '../../trainer-image/model/decoder.js';
import { Adam, DEFAULT_ADAM } from '../../trainer-image/train/adam.js';
import { boxShare, massInBox } from '../../trainer-image/train/attention-boxes.js';
import { trainConfig, type TrainConfig } from '../../trainer-image/train/config.js';
import { FEATURE_CACHE_ENV } from '../../trainer-image/train/features.js';
import { beamCaptions } from '../../trainer-image/train/final-evaluation.js';
import type { Hyperparameters } from '../../trainer-image/train/hyperparameters.js';
import { freshState, runTraining, type LoopContext } from '../../trainer-image/train/loop.js';
import { prepareData, type PreparedData } from '../../trainer-image/train/prepare-data.js';
import { scores } from '../../trainer-image/train/validation.js';
import type { ProcessGroup } from '../../trainer-image/distributed/process-group.js';
import { loopbackGang } from '../train-fixture.js';

process.env[FEATURE_CACHE_ENV] ??= join(tmpdir(), 'captionrun-test-features');
await useBackendUnderTest();
const log = createLogger({}, new PassThrough());

function config(decoder: 'gru' | 'lstm', attention: 'bahdanau' | 'luong'): TrainConfig {
  const r = validateRun({
    apiVersion: 'captionrun.dev/v1alpha1',
    kind: 'CaptionTrainingRun',
    metadata: { name: 'quality-gate' },
    spec: {
      dataset: { format: 'synthetic', synthetic: { images: 200, seed: 11, imageSize: 128, maxObjects: 1 } },
      model: { decoder, attention, embeddingDim: 32, hiddenDim: 64, attentionDim: 32, dropout: 0 },
      training: { epochs: 24, batchSize: 16, learningRate: 0.01, attentionRegularization: 0, lrSchedule: { type: 'cosine', minLearningRate: 0.0003 }, seed: 1 },
      checkpoint: { store: { local: { path: '/unused' } } },
    },
  });
  assert.ok(r.ok);
  return trainConfig(r.run);
}

const noCheckpoints: LoopContext['checkpoints'] = {
  save: async () => true,
  flush: async () => undefined,
};

let prepared: PreparedData | undefined;
const [group] = (await loopbackGang(1, log)) as [ProcessGroup];

for (const decoder of ['gru', 'lstm'] as const) {
  for (const attention of ['bahdanau', 'luong'] as const) {
    test(`${decoder} + ${attention}: held-out BLEU-4 >= 0.6 and attention on the named object >= 2x its share`, async () => {
      const c = config(decoder, attention);
      // Same dataset and encoder for all four: features are extracted (or read from the cache) once.
      prepared ??= await prepareData(c, undefined, log);
      const { data, valItems, maxCaptionLength } = prepared;
      const cfg = { ...c.decoder, vocabSize: data.vocabulary.size, featureDim: data.train.features.channels };
      const model = createDecoder(cfg, initialValues(cfg, c.training.seed));
      const adam = new Adam(model.params, { ...DEFAULT_ADAM, clipNorm: c.training.gradientClipNorm });
      const hyper: Hyperparameters = { batchSize: 16, learningRate: 0.01, maxCaptionLength, vocabularySize: data.vocabulary.size, auto: [] };
      await runTraining({ config: c, hyper, decoder: model, adam, data, checkpoints: noCheckpoints, group, log, stopRequested: () => false }, freshState(c, hyper, model));

      const captions = beamCaptions(model, data.val, valItems, data.vocabulary, { beamSize: 1, noRepeatNgramSize: 0, lengthPenalty: 0 }, maxCaptionLength - 2);
      const { bleu4 } = scores(
        data.val,
        captions.map((x) => x.caption),
      );
      let mass = 0;
      let share = 0;
      let words = 0;
      captions.forEach((x, i) => {
        const objects = valItems[i]?.objects ?? [];
        x.caption.split(' ').forEach((word, t) => {
          const named = objects.find((o) => o.size === word || o.color === word || o.shape === word);
          if (!named) return;
          mass += massInBox(x.attention[t] ?? [], data.val.table.grid, named.box);
          share += boxShare(named.box);
          words += 1;
        });
      });
      const sample = captions.slice(0, 3).map((x) => `"${x.caption}" vs "${x.references[0] ?? ''}"`).join('; ');
      assert.ok(words >= data.val.table.features.length, `object words were generated (${words})`);
      assert.ok(bleu4 >= 0.6, `BLEU-4 ${bleu4.toFixed(3)} < 0.6 (${sample})`);
      assert.ok(mass >= 2 * share, `attention inside the box ${(mass / words).toFixed(3)} is not 2x the box share ${(share / words).toFixed(3)}`);
      adam.dispose();
      disposeDecoder(model);
    });
  }
}
