// Lists, verifies and loads checkpoints. Every byte handed to a caller has been checked against the
// manifest while it was downloaded (size and digest), and a checkpoint that fails any rule is reported
// with its reason and skipped. The latest valid checkpoint is the highest valid step; nothing else counts.
import type { Registry } from 'prom-client';
import { createLogger, type Logger } from '../telemetry/logger.js';
import { createDigest, type HashAlgorithm } from './digest.js';
import { CheckpointInvalidError, type InvalidReason } from './errors.js';
import { MANIFEST_FILE, parseCheckpointName, STATE_FILE } from './layout.js';
import { parseManifest, type Manifest, type ManifestFile } from './manifest.js';
import { checkpointMetrics, type CheckpointMetrics } from './metrics.js';
import { withRetry } from './retry.js';
import type { CheckpointStore } from './store.js';

const MAX_MANIFEST_BYTES = 16 << 20;

export interface CheckpointInfo {
  name: string;
  step: number;
  valid: boolean;
  reason?: InvalidReason;
  detail?: string;
  /** Present whenever the manifest itself passed its checks, even if a file did not. */
  manifest?: Manifest;
}

export interface LoadedCheckpoint {
  name: string;
  manifest: Manifest;
  /** Every file the manifest lists except state.json, verified. */
  files: Map<string, Uint8Array>;
  state: unknown;
}

export interface ReaderOptions {
  /** Where invalid checkpoints are reported; default a new pino logger, null for none (the CLI prints its own table). */
  logger?: Logger | null;
  /** How long transient store failures during a download are retried before StoreUnavailableError; default 60 s. */
  retryDeadlineMs?: number;
  registry?: Registry;
}

type Verdict<T> = { ok: true; value: T } | { ok: false; reason: InvalidReason; detail: string };

export class CheckpointReader {
  private readonly metrics: CheckpointMetrics;
  private readonly logger: Logger | undefined;

  constructor(
    readonly store: CheckpointStore,
    private readonly options: ReaderOptions = {},
  ) {
    this.metrics = checkpointMetrics(options.registry);
    this.logger = options.logger === null ? undefined : (options.logger ?? createLogger({ component: 'checkpoint-reader' }));
  }

  /** Checkpoint directory names, newest step first. */
  async names(): Promise<string[]> {
    const names = await this.store.listCheckpoints();
    return names.sort((a, b) => (parseCheckpointName(b) ?? 0) - (parseCheckpointName(a) ?? 0));
  }

  /** Reads and checks the manifest only (no file digests): cheap, for ranking and display. */
  async inspect(name: string): Promise<CheckpointInfo> {
    const step = stepOf(name);
    const m = await this.retry(`read ${name}/${MANIFEST_FILE}`, () => this.readManifest(name));
    return m.ok ? { name, step, valid: true, manifest: m.value } : { name, step, valid: false, reason: m.reason, detail: m.detail };
  }

  /** Full verification: manifest plus every file's size and digest, reading each file once. */
  async verify(name: string): Promise<CheckpointInfo> {
    const result = await this.check(name, false);
    return this.report(result.info);
  }

  /** Every checkpoint, newest first; `verify: false` checks manifests only. */
  async list(options: { verify?: boolean } = {}): Promise<CheckpointInfo[]> {
    const out: CheckpointInfo[] = [];
    for (const name of await this.names()) out.push(options.verify === false ? this.report(await this.inspect(name)) : await this.verify(name));
    return out;
  }

  /** Loads one checkpoint; throws CheckpointInvalidError when it fails verification. */
  async load(name: string): Promise<LoadedCheckpoint> {
    const { info, files } = await this.check(name, true);
    this.report(info);
    if (!info.valid || !info.manifest || !files) throw new CheckpointInvalidError(name, info.reason ?? 'manifest-invalid', info.detail ?? '', { file: `${this.store.uri}/${name}` });
    const stateBytes = files.get(STATE_FILE);
    files.delete(STATE_FILE);
    let state: unknown;
    try {
      state = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(stateBytes));
    } catch (err) {
      // The digest matched, so the writer itself produced this: report it rather than resume from it.
      throw new CheckpointInvalidError(name, 'manifest-invalid', `${STATE_FILE} is not JSON: ${(err as Error).message}`);
    }
    return { name, manifest: info.manifest, files, state };
  }

  /**
   * The newest valid checkpoint, loaded and verified, plus every newer one that was invalid (each already
   * logged). `checkpoint` is undefined when no valid checkpoint exists: a fresh start.
   */
  async loadLatest(): Promise<{ checkpoint?: LoadedCheckpoint; invalid: CheckpointInfo[] }> {
    const invalid: CheckpointInfo[] = [];
    for (const name of await this.names()) {
      try {
        return { checkpoint: await this.load(name), invalid };
      } catch (err) {
        if (!(err instanceof CheckpointInvalidError)) throw err;
        invalid.push({ name, step: stepOf(name), valid: false, reason: err.reason, detail: err.message });
      }
    }
    return { invalid };
  }

  /** The newest fully verified checkpoint without keeping its bytes (the operator's question). */
  async latestValid(): Promise<{ latest?: CheckpointInfo; invalid: CheckpointInfo[] }> {
    const invalid: CheckpointInfo[] = [];
    for (const name of await this.names()) {
      const info = await this.verify(name);
      if (info.valid) return { latest: info, invalid };
      invalid.push(info);
    }
    return { invalid };
  }

  private report(info: CheckpointInfo): CheckpointInfo {
    if (!info.valid) {
      this.metrics.invalid.inc({ reason: info.reason });
      this.logger?.warn({ store: this.store.uri, checkpoint: info.name, step: info.step, reason: info.reason, detail: info.detail }, 'invalid checkpoint');
    }
    return info;
  }

  private async check(name: string, keep: boolean): Promise<{ info: CheckpointInfo; files?: Map<string, Uint8Array> }> {
    const step = stepOf(name);
    const m = await this.retry(`read ${name}/${MANIFEST_FILE}`, () => this.readManifest(name));
    if (!m.ok) return { info: { name, step, valid: false, reason: m.reason, detail: m.detail } };
    const manifest = m.value;
    const files = new Map<string, Uint8Array>();
    for (const file of manifest.files) {
      const r = await this.retry(`verify ${name}/${file.name}`, () => this.readVerified(name, file, manifest.hashAlgorithm, keep));
      if (!r.ok) return { info: { name, step, valid: false, reason: r.reason, detail: r.detail, manifest } };
      if (r.value) files.set(file.name, r.value);
    }
    return { info: { name, step, valid: true, manifest }, files: keep ? files : undefined };
  }

  /** A connection lost halfway through a download says nothing about the checkpoint: read it again. */
  private retry<T>(what: string, op: () => Promise<T>): Promise<T> {
    return withRetry(`${this.store.uri}: ${what}`, op, { deadlineMs: this.options.retryDeadlineMs ?? 60_000, logger: this.logger });
  }

  private async readManifest(name: string): Promise<Verdict<Manifest>> {
    const stream = await this.store.readFile(`${name}/${MANIFEST_FILE}`);
    if (!stream) return { ok: false, reason: 'manifest-missing', detail: `${MANIFEST_FILE} does not exist` };
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of stream) {
      size += chunk.byteLength;
      if (size > MAX_MANIFEST_BYTES) return { ok: false, reason: 'manifest-invalid', detail: `larger than ${MAX_MANIFEST_BYTES} bytes` };
      chunks.push(chunk);
    }
    const parsed = await parseManifest(Buffer.concat(chunks), name);
    return parsed.ok ? { ok: true, value: parsed.manifest } : parsed;
  }

  /** Streams one file through the digest, stopping as soon as it is longer than the manifest says. */
  private async readVerified(dir: string, file: ManifestFile, algorithm: HashAlgorithm, keep: boolean): Promise<Verdict<Uint8Array | undefined>> {
    const stream = await this.store.readFile(`${dir}/${file.name}`);
    if (!stream) return { ok: false, reason: 'file-missing', detail: `${file.name} does not exist` };
    const digest = await createDigest(algorithm);
    const out = keep ? new Uint8Array(file.bytes) : undefined;
    let size = 0;
    for await (const chunk of stream) {
      if (size + chunk.byteLength > file.bytes) {
        return { ok: false, reason: 'file-long', detail: `${file.name} is longer than the ${file.bytes} bytes the manifest records` };
      }
      digest.update(chunk);
      out?.set(chunk, size);
      size += chunk.byteLength;
    }
    if (size < file.bytes) return { ok: false, reason: 'file-short', detail: `${file.name} has ${size} bytes, the manifest records ${file.bytes}` };
    const hex = digest.hex();
    if (hex !== file.digest) return { ok: false, reason: 'digest-mismatch', detail: `${file.name} digests to ${hex}, the manifest records ${file.digest}` };
    return { ok: true, value: out };
  }
}

function stepOf(name: string): number {
  const step = parseCheckpointName(name);
  if (step === undefined) throw new RangeError(`${name} is not a checkpoint name`);
  return step;
}
