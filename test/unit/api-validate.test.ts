import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { validateRun } from '../../lib/api/validate.js';
import type { CaptionTrainingRun } from '../../lib/api/types.js';

const examplesDir = new URL('../../manifests/examples/', import.meta.url);

function loadExample(name: string): Record<string, unknown> {
  const docs = parseAllDocuments(readFileSync(new URL(name, examplesDir), 'utf8'));
  return docs[0]?.toJS() as Record<string, unknown>;
}

/** The smallest valid run; each bad case below changes one thing. */
function minimal(): Record<string, unknown> {
  return {
    apiVersion: 'captionrun.dev/v1alpha1',
    kind: 'CaptionTrainingRun',
    metadata: { name: 'r' },
    spec: { dataset: { format: 'synthetic' }, checkpoint: { store: { local: { path: '/tmp/c' } } } },
  };
}

/** Sets a dotted path (creating objects on the way) in a minimal run. */
function withField(path: string, value: unknown): Record<string, unknown> {
  const run = minimal();
  const keys = path.split('.');
  let node = run;
  for (const key of keys.slice(0, -1)) {
    node[key] ??= {};
    node = node[key] as Record<string, unknown>;
  }
  const last = keys[keys.length - 1] as string;
  if (value === undefined) delete node[last];
  else node[last] = value;
  return run;
}

test('every example manifest validates', () => {
  const files = readdirSync(examplesDir).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 2, 'quickstart.yaml and run.yaml exist');
  for (const file of files) {
    const result = validateRun(loadExample(file));
    assert.deepEqual(result.issues, [], `${file} is valid`);
  }
});

test('validation fills in defaults and returns a typed run', () => {
  const result = validateRun(minimal());
  assert.ok(result.ok);
  const run: CaptionTrainingRun = result.run;
  assert.equal(run.spec.model.encoder, 'inceptionv3');
  assert.equal(run.spec.training.batchSize, 'auto');
  assert.equal(run.spec.checkpoint.keepLast, 3);
  assert.equal(run.spec.restartPolicy.backoffLimit, 6);
  assert.equal(run.spec.training.gradientCheckpointing.blockSteps, 5);
});

test('validation does not modify its input', () => {
  const input = minimal();
  const before = JSON.stringify(input);
  validateRun(input);
  assert.equal(JSON.stringify(input), before);
});

const s3 = { bucket: 'ckpts', credentialsSecret: 's3-creds' };

const badSpecs: { name: string; run: Record<string, unknown>; path: string; message: RegExp }[] = [
  { name: 'unknown top-level spec field', run: withField('spec.epochs', 3), path: 'spec.epochs', message: /unknown field/ },
  { name: 'misspelled nested field', run: withField('spec.training.epochz', 3), path: 'spec.training.epochz', message: /unknown field/ },
  { name: 'misspelled decoder enum', run: withField('spec.model.decoder', 'lstn'), path: 'spec.model.decoder', message: /must be one of: lstm, gru/ },
  { name: 'unknown encoder', run: withField('spec.model.encoder', 'resnet50'), path: 'spec.model.encoder', message: /must be one of: inceptionv3, densenet121/ },
  { name: 'unknown attention', run: withField('spec.model.attention', 'dot'), path: 'spec.model.attention', message: /bahdanau, luong/ },
  { name: 'negative hidden size', run: withField('spec.model.hiddenDim', -5), path: 'spec.model.hiddenDim', message: /must be >= 8/ },
  { name: 'zero epochs', run: withField('spec.training.epochs', 0), path: 'spec.training.epochs', message: /must be >= 1/ },
  { name: 'epochs as a string', run: withField('spec.training.epochs', 'ten'), path: 'spec.training.epochs', message: /must be integer, got string/ },
  { name: 'batch size word other than auto', run: withField('spec.training.batchSize', 'lots'), path: 'spec.training.batchSize', message: /integer from 1 to 4096 or "auto"/ },
  { name: 'batch size zero', run: withField('spec.training.batchSize', 0), path: 'spec.training.batchSize', message: /integer from 1 to 4096/ },
  { name: 'batch size fractional', run: withField('spec.training.batchSize', 1.5), path: 'spec.training.batchSize', message: /integer or "auto"/ },
  { name: 'learning rate zero', run: withField('spec.training.learningRate', 0), path: 'spec.training.learningRate', message: /must be > 0/ },
  { name: 'dropout above bound', run: withField('spec.model.dropout', 1.5), path: 'spec.model.dropout', message: /must be <= 0.9/ },
  { name: 'missing dataset', run: withField('spec.dataset', undefined), path: 'spec.dataset', message: /is required/ },
  { name: 'flickr8k without a source', run: withField('spec.dataset.format', 'flickr8k'), path: 'spec.dataset.source', message: /required for format flickr8k/ },
  {
    name: 'synthetic options with a real dataset',
    run: withField('spec.dataset', { format: 'karpathy', source: 's3://data/coco.json', synthetic: { images: 10 } }),
    path: 'spec.dataset.synthetic',
    message: /only used with format: synthetic/,
  },
  { name: 'too many synthetic images', run: withField('spec.dataset.synthetic', { images: 200000 }), path: 'spec.dataset.synthetic.images', message: /must be <= 100000/ },
  { name: 'pretrained densenet', run: withField('spec.model.encoder', 'densenet121'), path: 'spec.model.encoderWeights', message: /no pretrained DenseNet121 weights/ },
  { name: 'encoder weights not a URI', run: withField('spec.model.encoderWeights', 'imagenet'), path: 'spec.model.encoderWeights', message: /must match pattern/ },
  { name: 'two checkpoint stores', run: withField('spec.checkpoint.store', { local: { path: '/a' }, s3 }), path: 'spec.checkpoint.store', message: /exactly one of s3, pvc or local/ },
  { name: 'no checkpoint store', run: withField('spec.checkpoint.store', {}), path: 'spec.checkpoint.store', message: /exactly one/ },
  { name: 's3 without credentials', run: withField('spec.checkpoint.store', { s3: { bucket: 'ckpts' } }), path: 'spec.checkpoint.store.s3', message: /credentialsSecret .* or useWorkloadIdentity: true/ },
  { name: 's3 without a bucket', run: withField('spec.checkpoint.store', { s3: { credentialsSecret: 'x' } }), path: 'spec.checkpoint.store.s3.bucket', message: /is required/ },
  { name: 'bad bucket name', run: withField('spec.checkpoint.store', { s3: { ...s3, bucket: 'Bad_Bucket' } }), path: 'spec.checkpoint.store.s3.bucket', message: /must match pattern/ },
  { name: 'checkpoints never written', run: withField('spec.checkpoint.everyEpoch', false), path: 'spec.checkpoint.everyEpoch', message: /set everySteps or everyEpoch/ },
  { name: 'keepBest without a metric', run: withField('spec.training', { validationMetric: 'none', lrSchedule: { type: 'constant' } }), path: 'spec.checkpoint.keepBest', message: /needs spec.training.validationMetric/ },
  { name: 'plateau without a metric', run: withField('spec.training.validationMetric', 'none'), path: 'spec.training.lrSchedule.type', message: /plateau needs spec.training.validationMetric/ },
  { name: 'too many GPUs in the gang', run: withField('spec.resources', { workers: 64, gpusPerWorker: 9 }), path: 'spec.resources.gpusPerWorker', message: /must be <= 8/ },
  { name: 'gang above the GPU bound', run: withField('spec.resources', { workers: 65, gpusPerWorker: 8 }), path: 'spec.resources.workers', message: /must be <= 64/ },
  { name: 'bad toleration effect', run: withField('spec.resources.tolerations', [{ key: 'gpu', effect: 'NoScheduel' }]), path: 'spec.resources.tolerations[0].effect', message: /NoSchedule/ },
  { name: 'retryable exit code out of range', run: withField('spec.restartPolicy.retryableExitCodes', [1, 300]), path: 'spec.restartPolicy.retryableExitCodes[1]', message: /must be <= 255/ },
  { name: 'run name too long for pod names', run: withField('metadata.name', 'a'.repeat(41)), path: 'metadata.name', message: /must NOT have more than 40 characters/ },
  { name: 'wrong apiVersion', run: withField('apiVersion', 'captionrun.dev/v1'), path: 'apiVersion', message: /must be one of: captionrun.dev\/v1alpha1/ },
  { name: 'llm endpoint without scheme', run: withField('spec.evaluation.llm', { endpoint: 'vllm:8000', model: 'm' }), path: 'spec.evaluation.llm.endpoint', message: /must match pattern/ },
];

for (const bad of badSpecs) {
  test(`rejects: ${bad.name}`, () => {
    const result = validateRun(bad.run);
    assert.equal(result.ok, false, 'is rejected');
    const hit = result.issues.find((i) => i.path === bad.path);
    assert.ok(hit, `an issue at ${bad.path}; got ${JSON.stringify(result.issues)}`);
    assert.match(hit.message, bad.message);
  });
}

test('the gang bound counts CPU workers as one slot each', () => {
  // 64 workers x 8 GPUs = 512 is the largest gang allowed; the same rule must accept CPU-only gangs.
  assert.ok(validateRun(withField('spec.resources', { workers: 64, gpusPerWorker: 8 })).ok);
  assert.ok(validateRun(withField('spec.resources', { workers: 64, gpusPerWorker: 0 })).ok);
});

test('hints suggest the closest known name', () => {
  const result = validateRun(withField('spec.training.epochz', 3));
  assert.equal(result.ok, false);
  assert.equal(result.issues[0]?.hint, "did you mean 'epochs'?");
});

test('a wrong type inside an int-or-string is reported once, not per anyOf branch', () => {
  const result = validateRun(withField('spec.training.batchSize', true));
  assert.equal(result.ok, false);
  assert.equal(result.issues.filter((i) => i.path === 'spec.training.batchSize').length, 1);
});
