// A finished run's outputs kept with its checkpoints, by the same rules: `<prefix>/<namespace>/<run>/outputs/`
// holds every file of the trainer's outputs directory and, written last, MANIFEST.json listing each file's
// size and digest with a digest of its own. A reader verifies every file against it while downloading and
// names any that does not match; nothing unverified is handed out.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { InvalidInputError } from '../errors.js';
import { canonicalJson } from './manifest.js';
import { digestOf, isHashAlgorithm, type HashAlgorithm } from './digest.js';
import { sourceBytes, type CheckpointStore } from './store.js';

export const OUTPUTS_DIR = 'outputs';
export const OUTPUTS_MANIFEST = `${OUTPUTS_DIR}/MANIFEST.json`;

export interface OutputsManifest {
  formatVersion: 1;
  createdAt: string;
  hashAlgorithm: HashAlgorithm;
  files: { name: string; bytes: number; digest: string }[];
  manifestDigest: string;
}

/** Uploads every file under `dir` to `<store>/outputs/`, the manifest last; returns the outputs' URI. */
export async function publishOutputs(store: CheckpointStore, dir: string, hashAlgorithm: HashAlgorithm): Promise<string> {
  const files: OutputsManifest['files'] = [];
  for (const path of await listFiles(dir)) {
    const name = relative(dir, path).split('\\').join('/');
    const data = await readFile(path);
    await store.writeFile(`${OUTPUTS_DIR}/${name}`, data);
    files.push({ name, bytes: data.byteLength, digest: await digestOf(hashAlgorithm, data) });
  }
  const body = { formatVersion: 1 as const, createdAt: new Date().toISOString(), hashAlgorithm, files };
  const manifest: OutputsManifest = { ...body, manifestDigest: await digestOf(hashAlgorithm, canonicalJson(body)) };
  await store.writeFile(OUTPUTS_MANIFEST, new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`));
  return `${store.uri}/${OUTPUTS_DIR}`;
}

/**
 * Downloads and verifies a run's outputs into `dest`. Files that match the manifest are written; any that do
 * not (or are missing) are named in the InvalidInputError thrown at the end, and are not written.
 */
export async function fetchOutputs(store: CheckpointStore, dest: string): Promise<OutputsManifest> {
  const manifest = await readManifest(store);
  const bad: string[] = [];
  for (const f of manifest.files) {
    const data = await readAll(store, `${OUTPUTS_DIR}/${f.name}`);
    const problem =
      data === undefined ? 'missing' : data.byteLength !== f.bytes ? `${data.byteLength} bytes, the manifest says ${f.bytes}` : (await digestOf(manifest.hashAlgorithm, data)) !== f.digest ? 'digest does not match the manifest' : undefined;
    if (problem || data === undefined) {
      bad.push(`${f.name} (${problem ?? 'missing'})`);
      continue;
    }
    const target = resolve(dest, f.name);
    if (!target.startsWith(`${resolve(dest)}/`)) throw new InvalidInputError(`manifest names a file outside the outputs: ${f.name}`, { file: `${store.uri}/${OUTPUTS_MANIFEST}` });
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, data);
  }
  if (bad.length > 0) throw new InvalidInputError(`corrupt outputs, not written: ${bad.join(', ')}`, { file: `${store.uri}/${OUTPUTS_DIR}`, hint: 'the run must be rerun or its outputs republished' });
  return manifest;
}

async function readManifest(store: CheckpointStore): Promise<OutputsManifest> {
  const where = `${store.uri}/${OUTPUTS_MANIFEST}`;
  const bytes = await readAll(store, OUTPUTS_MANIFEST);
  if (!bytes) throw new InvalidInputError('no outputs manifest: the run has not finished, or wrote no outputs', { file: where });
  let m: OutputsManifest;
  try {
    m = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as OutputsManifest;
  } catch (err) {
    throw new InvalidInputError(`outputs manifest is not JSON: ${(err as Error).message}`, { file: where });
  }
  if (m.formatVersion !== 1 || !isHashAlgorithm(m.hashAlgorithm) || !Array.isArray(m.files)) throw new InvalidInputError('outputs manifest has an unknown format', { file: where });
  const { manifestDigest, ...body } = m;
  if ((await digestOf(m.hashAlgorithm, canonicalJson(body))) !== manifestDigest) throw new InvalidInputError('outputs manifest does not match its own digest', { file: where });
  return m;
}

async function readAll(store: CheckpointStore, path: string): Promise<Uint8Array | undefined> {
  const stream = await store.readFile(path);
  return stream && sourceBytes(() => stream);
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out.sort();
}
