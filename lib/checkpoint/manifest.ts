// MANIFEST.json: the commit record of one checkpoint, written after every file it lists. It carries its own
// digest (over a canonical form of everything else), so a flipped bit anywhere in it — a step, a size,
// a metric — makes the checkpoint invalid instead of silently changing what gets resumed.
import { createDigest, DIGEST_HEX_RE, isHashAlgorithm, type HashAlgorithm } from './digest.js';
import type { InvalidReason } from './errors.js';
import { isValidFileName, parseCheckpointName, STATE_FILE } from './layout.js';
import type { CommittedCheckpoint } from '../telemetry/progress-report.js';

export const FORMAT_VERSION = 1;

export interface ManifestFile {
  name: string;
  bytes: number;
  digest: string;
}

export interface Manifest {
  formatVersion: typeof FORMAT_VERSION;
  step: number;
  epoch: number;
  createdAt: string;
  hashAlgorithm: HashAlgorithm;
  files: ManifestFile[];
  /** The checkpoint this run resumed from or saved before this one; null for the first. */
  parent: string | null;
  /** Versions of what wrote it (captionrun, node, backend...), for debugging old checkpoints. */
  producer: Record<string, string>;
  metrics: Record<string, number>;
  manifestDigest: string;
}

export type ManifestBody = Omit<Manifest, 'manifestDigest' | 'formatVersion'>;

export type ParsedManifest = { ok: true; manifest: Manifest } | { ok: false; reason: InvalidReason; detail: string };

const KEYS = ['formatVersion', 'step', 'epoch', 'createdAt', 'hashAlgorithm', 'files', 'parent', 'producer', 'metrics', 'manifestDigest'];

export async function serializeManifest(body: ManifestBody): Promise<Uint8Array> {
  const unsigned = { formatVersion: FORMAT_VERSION, ...body };
  const manifestDigest = await canonicalDigest(body.hashAlgorithm, unsigned);
  return new TextEncoder().encode(`${JSON.stringify({ ...unsigned, manifestDigest }, null, 2)}\n`);
}

/** Parses and checks a manifest read from the checkpoint directory `dirName`; never throws. */
export async function parseManifest(bytes: Uint8Array, dirName: string): Promise<ParsedManifest> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    return { ok: false, reason: 'manifest-unparsable', detail: (err as Error).message };
  }
  if (!isRecord(value)) return invalid('manifest-invalid', 'not a JSON object');
  if (value.formatVersion !== FORMAT_VERSION) {
    return value.formatVersion === undefined
      ? invalid('manifest-invalid', 'formatVersion is missing')
      : invalid('unknown-format-version', `formatVersion ${JSON.stringify(value.formatVersion)}, this reader knows ${FORMAT_VERSION}`);
  }
  const problem = schemaProblem(value);
  if (problem) return invalid('manifest-invalid', problem);
  const manifest = value as unknown as Manifest;
  const { manifestDigest, ...unsigned } = manifest;
  const expected = await canonicalDigest(manifest.hashAlgorithm, unsigned);
  if (expected !== manifestDigest) return invalid('manifest-digest-mismatch', `manifest content digests to ${expected}, it records ${manifestDigest}`);
  const dirStep = parseCheckpointName(dirName);
  if (dirStep !== manifest.step) return invalid('step-mismatch', `manifest says step ${manifest.step}, directory is ${dirName}`);
  return { ok: true, manifest };
}

function schemaProblem(v: Record<string, unknown>): string | undefined {
  const extra = Object.keys(v).filter((k) => !KEYS.includes(k));
  if (extra.length > 0) return `unknown fields ${extra.join(', ')}`;
  if (!isCount(v.step)) return 'step must be a non-negative integer';
  if (!isCount(v.epoch)) return 'epoch must be a non-negative integer';
  if (typeof v.createdAt !== 'string' || Number.isNaN(Date.parse(v.createdAt))) return 'createdAt must be a timestamp';
  if (!isHashAlgorithm(v.hashAlgorithm)) return `hashAlgorithm ${JSON.stringify(v.hashAlgorithm)} is not sha256 or blake3`;
  if (typeof v.manifestDigest !== 'string' || !DIGEST_HEX_RE.test(v.manifestDigest)) return 'manifestDigest must be 64 hex digits';
  if (v.parent !== null && (typeof v.parent !== 'string' || parseCheckpointName(v.parent) === undefined)) return 'parent must be null or a checkpoint name';
  if (!isRecord(v.producer) || !Object.values(v.producer).every((x) => typeof x === 'string')) return 'producer must map names to version strings';
  if (!isRecord(v.metrics) || !Object.values(v.metrics).every((x) => typeof x === 'number' && Number.isFinite(x))) return 'metrics must map names to finite numbers';
  if (!Array.isArray(v.files)) return 'files must be a list';
  const names = new Set<string>();
  for (const [i, f] of v.files.entries()) {
    if (!isRecord(f) || Object.keys(f).length !== 3) return `files[${i}] must have exactly name, bytes, digest`;
    if (typeof f.name !== 'string' || !isValidFileName(f.name)) return `files[${i}].name is not a plain file name`;
    if (names.has(f.name)) return `files[${i}].name ${f.name} is listed twice`;
    names.add(f.name);
    if (!isCount(f.bytes)) return `files[${i}].bytes must be a non-negative integer`;
    if (typeof f.digest !== 'string' || !DIGEST_HEX_RE.test(f.digest)) return `files[${i}].digest must be 64 hex digits`;
  }
  if (!names.has(STATE_FILE)) return `files must list ${STATE_FILE}`;
  return undefined;
}

async function canonicalDigest(algorithm: HashAlgorithm, value: unknown): Promise<string> {
  const d = await createDigest(algorithm);
  d.update(new TextEncoder().encode(canonicalJson(value)));
  return d.hex();
}

/** JSON with object keys sorted at every level, so the digest does not depend on key order or whitespace. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isRecord(value)) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function invalid(reason: InvalidReason, detail: string): ParsedManifest {
  return { ok: false, reason, detail };
}

/** A committed checkpoint as trainers report it and status shows it: its manifest's facts under its URI. */
export function committedCheckpoint(runUri: string, name: string, m: Manifest): CommittedCheckpoint {
  return { name, uri: `${runUri}/${name}`, step: m.step, epoch: m.epoch, digest: m.manifestDigest, time: m.createdAt, metrics: m.metrics };
}
