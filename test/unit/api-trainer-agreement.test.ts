// One validator: every spec the trainer refuses for a reason the spec alone decides is also refused by
// `captionrun validate` (and admission, which runs the same CEL rules), naming the same field. Each case
// runs the trainer's own check, so a rule added to the trainer without a matching schema rule fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateRun } from '../../lib/api/validate.js';
import type { CaptionTrainingRun } from '../../lib/api/types.js';
import { InvalidInputError } from '../../lib/errors.js';
import { initBackend } from '../../trainer-image/backend.js';
import { loadEncoder } from '../../trainer-image/model/encoder.js';
import { openDataset } from '../../trainer-image/data/open-dataset.js';
import { SYNTHETIC_DEFAULTS } from '../../trainer-image/data/synthetic.js';
import { buildVocabulary } from '../../trainer-image/train/hyperparameters.js';
import { trainConfig } from '../../trainer-image/train/config.js';
import { checkpointMetricName, metricValue } from '../../trainer-image/train/validation.js';

/** A valid run with parts of its spec replaced. */
function runWith(parts: { model?: Record<string, unknown>; dataset?: Record<string, unknown>; training?: Record<string, unknown> }): unknown {
  return {
    apiVersion: 'captionrun.dev/v1alpha1',
    kind: 'CaptionTrainingRun',
    metadata: { name: 'agreement' },
    spec: {
      dataset: parts.dataset ?? { format: 'synthetic' },
      model: parts.model ?? {},
      ...(parts.training ? { training: parts.training } : {}),
      checkpoint: { store: { local: { path: '/tmp/agreement' } } },
    },
  };
}
const runWithModel = (model: Record<string, unknown>): unknown => runWith({ model });

async function refusal(check: () => unknown): Promise<InvalidInputError | undefined> {
  try {
    await check();
    return undefined;
  } catch (err) {
    if (err instanceof InvalidInputError) return err;
    throw err;
  }
}

/** What the trainer does with a spec that skipped validation (e.g. applied with an older CRD): its own checks. */
async function trainerVerdict(model: Record<string, unknown>): Promise<InvalidInputError | undefined> {
  // The trainer reads a spec through validateRun's defaulting; here the defaults are applied by hand so that
  // the trainer's check, not the validator, is what runs.
  const spec = { encoder: 'inceptionv3', encoderWeights: 'pretrained', ...model };
  return refusal(async () => {
    const encoder = await loadEncoder({ encoder: spec.encoder as CaptionTrainingRun['spec']['model']['encoder'], encoderWeights: String(spec.encoderWeights), inputSize: 96, seed: 1 });
    encoder.dispose();
  });
}

const refused: { what: string; model: Record<string, unknown> }[] = [
  { what: 'InceptionV3 with random weights', model: { encoder: 'inceptionv3', encoderWeights: 'random' } },
  { what: 'InceptionV3 with a weights URI', model: { encoder: 'inceptionv3', encoderWeights: 's3://weights/inception/model.json' } },
  { what: 'DenseNet121 "pretrained" (none ship)', model: { encoder: 'densenet121', encoderWeights: 'pretrained' } },
  { what: 'EfficientNet-Lite1 with random weights', model: { encoder: 'efficientnet-lite1', encoderWeights: 'random' } },
];

test('the trainer and validate refuse the same encoder specs, naming spec.model.encoderWeights', async () => {
  await initBackend('cpu');
  for (const { what, model } of refused) {
    const trainer = await trainerVerdict(model);
    assert.ok(trainer, `${what}: the trainer refuses it`);
    assert.equal(trainer.field, 'spec.model.encoderWeights', `${what}: the trainer names the field`);
    const verdict = validateRun(runWithModel(model));
    assert.equal(verdict.ok, false, `${what}: validate refuses it too`);
    if (verdict.ok) continue;
    assert.ok(verdict.issues.some((i) => i.path === 'spec.model.encoderWeights'), `${what}: ${JSON.stringify(verdict.issues)}`);
  }
});

test('what validate accepts, the trainer accepts: the encoder specs the schema allows pass the trainer\'s checks', async () => {
  await initBackend('cpu');
  const accepted = [{ encoder: 'densenet121', encoderWeights: 'random' }];
  for (const model of accepted) {
    const verdict = validateRun(runWithModel(model));
    assert.ok(verdict.ok, JSON.stringify(model));
    assert.doesNotThrow(() => trainConfig(verdict.run, {}));
    assert.equal(await trainerVerdict(model), undefined, JSON.stringify(model));
  }
});

// The trainer's other spec-alone checks: the dataset opener's (before any file is read) and the vocabulary's.
// Rules that depend on the data (fewer captions than one batch, no word frequent enough) are not here: no
// validator can know them before the data is read, and the trainer reports them as a Failed condition.
const otherRules: { what: string; field: string; parts: Parameters<typeof runWith>[0]; trainer: () => unknown }[] = [
  ...([
    ['images', 9], ['images', 100_001], ['maxObjects', 0], ['maxObjects', 5], ['imageSize', 31], ['imageSize', 513], ['noise', -0.1], ['noise', 1.5],
  ] as const).map(([option, value]) => ({
    what: `synthetic.${option} ${value}`,
    field: `spec.dataset.synthetic.${option}`,
    parts: { dataset: { format: 'synthetic', synthetic: { [option]: value } } },
    trainer: () => openDataset({ format: 'synthetic', synthetic: { ...SYNTHETIC_DEFAULTS, [option]: value } }),
  })),
  ...(['flickr8k', 'karpathy'] as const).map((format) => ({
    what: `${format} without a source`,
    field: 'spec.dataset.source',
    parts: { dataset: { format } },
    trainer: () => openDataset({ format }),
  })),
  {
    what: 'a vocabulary of 4 words (only the special tokens)',
    field: 'spec.training.vocabularySize',
    parts: { training: { vocabularySize: 4 } },
    trainer: () => buildVocabulary({ vocabularySize: 4, minWordCount: 1 } as Parameters<typeof buildVocabulary>[0], ['a red circle']),
  },
];

test('the trainer and validate refuse the same dataset and vocabulary specs, naming the same field', async () => {
  for (const { what, field, parts, trainer } of otherRules) {
    const refused = await refusal(trainer);
    assert.ok(refused, `${what}: the trainer refuses it`);
    assert.equal(refused.field, field, `${what}: the trainer names the field`);
    const verdict = validateRun(runWith(parts));
    assert.equal(verdict.ok, false, `${what}: validate refuses it too`);
    if (verdict.ok) continue;
    assert.ok(verdict.issues.some((i) => i.path === field), `${what}: validate names ${field}: ${JSON.stringify(verdict.issues)}`);
  }
});

/** A valid run with `spec.training` and `spec.evaluation` set. */
function runWithQuality(training: Record<string, unknown>, evaluation: Record<string, unknown>): unknown {
  const run = runWithModel({}) as { spec: Record<string, unknown> };
  return { ...run, spec: { ...run.spec, training, evaluation } };
}

test('the decoding and loss fields validate accepts reach the trainer as written; out-of-range values are refused by name', () => {
  const verdict = validateRun(runWithQuality({ labelSmoothing: 0.1, validationMetric: 'cider', earlyStoppingPatience: 3 }, { beamSize: 5, noRepeatNgramSize: 2, lengthPenalty: 0.6 }));
  assert.ok(verdict.ok, JSON.stringify(verdict));
  const c = trainConfig(verdict.run, {});
  assert.deepEqual([c.training.labelSmoothing, c.training.validationMetric, c.training.earlyStoppingPatience], [0.1, 'cider', 3]);
  assert.deepEqual([c.evaluation.beamSize, c.evaluation.noRepeatNgramSize, c.evaluation.lengthPenalty], [5, 2, 0.6]);
  // Unset, the trainer decodes and trains as before these fields existed.
  const plain = validateRun(runWithModel({}));
  assert.ok(plain.ok);
  const d = trainConfig(plain.run, {});
  assert.deepEqual([d.training.labelSmoothing, d.evaluation.noRepeatNgramSize, d.evaluation.lengthPenalty], [0, 0, 0]);
  for (const [training, evaluation, path] of [
    [{ labelSmoothing: 0.7 }, {}, 'spec.training.labelSmoothing'],
    [{}, { noRepeatNgramSize: -1 }, 'spec.evaluation.noRepeatNgramSize'],
    [{}, { lengthPenalty: 5 }, 'spec.evaluation.lengthPenalty'],
    [{ validationMetric: 'cider-d' }, {}, 'spec.training.validationMetric'],
  ] as const) {
    const refused = validateRun(runWithQuality(training, evaluation));
    assert.equal(refused.ok, false, path);
    if (refused.ok) continue;
    assert.ok(refused.issues.some((i) => i.path === path), `${path}: ${JSON.stringify(refused.issues)}`);
  }
});

test('keepBest ranks checkpoints by the metric the loop writes for the spec\'s validationMetric', () => {
  assert.equal(checkpointMetricName('cider'), 'valCider');
  assert.equal(checkpointMetricName('bleu4'), 'valBleu4');
  assert.equal(checkpointMetricName('loss'), 'valLoss');
  const record = { epoch: 0, step: 6, trainLoss: 3, learningRate: 0.01, valBleu4: 0.1, valCider: 0.3, valLoss: 2.5 };
  for (const metric of ['cider', 'bleu4', 'loss'] as const) {
    const name = checkpointMetricName(metric) as 'valCider' | 'valBleu4' | 'valLoss';
    assert.equal(metricValue(metric, record), record[name], `${metric}: ranked by the value written as ${name}`);
  }
});
