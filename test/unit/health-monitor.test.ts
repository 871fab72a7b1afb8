import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../lib/telemetry/logger.js';
import { HealthMonitor, type HealthAlert } from '../../trainer-image/health/monitor.js';
import { parseNvidiaSmi, queryGpus } from '../../trainer-image/health/nvidia-smi.js';

const fixture = readFileSync(new URL('../fixtures/nvidia-smi/documented-format.csv', import.meta.url), 'utf8');
const logger = createLogger({ test: 'health' }, { write: () => true } as unknown as NodeJS.WritableStream);
const thresholds = { gpuMemoryPercent: 70, gpuIdlePercent: 5, diskFreePercent: 10, checkpointStaleSeconds: 600 };
const labels = { namespace: 'ml', run: 'r1', rank: 0 };

test('nvidia-smi CSV: MiB to bytes, percent to ratio, [N/A] left out', () => {
  const gpus = parseNvidiaSmi(fixture);
  assert.equal(gpus.length, 3);
  assert.deepEqual(gpus[0], {
    index: 0,
    uuid: 'GPU-5f1c3a2e-8d1b-4f0e-9a77-1b2c3d4e5f60',
    name: 'NVIDIA A100-SXM4-80GB',
    utilization: 0.87,
    memoryUsedBytes: 61440 * 1024 * 1024,
    memoryTotalBytes: 81920 * 1024 * 1024,
  });
  assert.equal(gpus[2]?.utilization, undefined, 'MIG slices report [N/A] utilisation');
  assert.throws(() => parseNvidiaSmi('garbage'), /unexpected nvidia-smi line/);
});

test('no nvidia-smi means no GPUs, not an error', async () => {
  assert.deepEqual(await queryGpus('/nonexistent/nvidia-smi'), []);
});

test('without GPUs there are no GPU series; thresholds and memory are exported', async () => {
  const monitor = new HealthMonitor({ labels, thresholds, volumes: [{ volume: 'cache', path: tmpdir() }], logger, gpus: async () => [] });
  await monitor.sample();
  const text = await monitor.registry.metrics();
  assert.doesNotMatch(text, /^captionrun_gpu_\w+\{/m);
  assert.match(text, /^captionrun_threshold_disk_free_percent\{namespace="ml",run="r1",rank="0"\} 10$/m);
  assert.match(text, /^captionrun_disk_total_bytes\{namespace="ml",run="r1",rank="0",volume="cache"\} [1-9]/m);
  assert.match(text, /^captionrun_process_resident_memory_bytes\{[^}]*\} [1-9]/m);
});

test('GPU memory above the threshold fires and recommends a smaller batch, per GPU', async () => {
  const fired: HealthAlert[][] = [];
  const monitor = new HealthMonitor({
    labels,
    thresholds,
    volumes: [],
    logger,
    gpus: async () => parseNvidiaSmi(fixture),
    alertSink: { update: async (a) => void fired.push(a) },
  });
  const snap = await monitor.sample();
  assert.deepEqual(snap.firing.map((a) => [a.name, a.labels.gpu]), [['CaptionRunGPUMemoryHigh', '0']], 'only GPU 0 is at 75 %');
  assert.equal(fired.length, 1);
  const text = await monitor.registry.metrics();
  assert.match(text, /captionrun_protective_actions_total\{[^}]*action="recommend-smaller-batch"\} 1/);
  assert.match(text, /captionrun_gpu_utilization_ratio\{[^}]*gpu="1"\} 0.03/);
  assert.doesNotMatch(text, /captionrun_gpu_utilization_ratio\{[^}]*gpu="2"\}/, '[N/A] is no series, not zero');
});

test('low disk fires for the volume that is low', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'health-'));
  const monitor = new HealthMonitor({
    labels,
    // Any real disk has less than 100 % free, so this volume always counts as low.
    thresholds: { ...thresholds, diskFreePercent: 100 },
    volumes: [{ volume: 'cache', path: dir }],
    logger,
    gpus: async () => [],
  });
  const snap = await monitor.sample();
  assert.deepEqual(snap.firing.map((a) => [a.name, a.labels.volume]), [['CaptionRunDiskSpaceLow', 'cache']]);
});

test('checkpoint staleness is measured from the last commit', async () => {
  let now = Date.parse('2026-01-01T00:00:00Z');
  const monitor = new HealthMonitor({ labels, thresholds, volumes: [], logger, gpus: async () => [], now: () => now });
  monitor.recordCheckpointCommit(new Date(now));
  now += 599_000;
  assert.deepEqual((await monitor.sample()).firing, []);
  now += 2_000;
  const snap = await monitor.sample();
  assert.deepEqual(snap.firing.map((a) => a.name), ['CaptionRunCheckpointStale']);
  assert.equal(snap.checkpointAgeSeconds, 601);
});

test('feature extraction progress is exported: images done and in all, images/s, and an ETA that is 0 once done', async () => {
  const monitor = new HealthMonitor({ labels, thresholds, volumes: [], logger, gpus: async () => [] });
  const before = await monitor.registry.metrics();
  assert.doesNotMatch(before, /^captionrun_feature_extraction_\w+\{/m, 'no series before extraction reports');
  monitor.recordExtraction({ done: 64, total: 1000, imagesPerSecond: 20.5, etaSeconds: 45.7 });
  let text = await monitor.registry.metrics();
  assert.match(text, /^captionrun_feature_extraction_images\{namespace="ml",run="r1",rank="0",state="done"\} 64$/m);
  assert.match(text, /^captionrun_feature_extraction_images\{namespace="ml",run="r1",rank="0",state="total"\} 1000$/m);
  assert.match(text, /^captionrun_feature_extraction_images_per_second\{namespace="ml",run="r1",rank="0"\} 20.5$/m);
  assert.match(text, /^captionrun_feature_extraction_eta_seconds\{namespace="ml",run="r1",rank="0"\} 45.7$/m);
  monitor.recordExtraction({ done: 1000, total: 1000, imagesPerSecond: 21, etaSeconds: 0.01 });
  text = await monitor.registry.metrics();
  assert.match(text, /^captionrun_feature_extraction_eta_seconds\{[^}]*\} 0$/m);
  assert.match(text, /^captionrun_feature_extraction_images\{[^}]*state="done"\} 1000$/m);
});
