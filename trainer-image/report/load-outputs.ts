// Reads the outputs a run left (a directory or an s3:// prefix) for the report. captions.json is what is
// compared and must be there; model.json, metrics.json, resources.json, embeddings.json and images/<id>.png
// are each optional: a missing one is listed in `missing` and the report says so where it would have been
// used. A file that is there but unreadable or malformed is an InvalidInputError that names the file and
// the field (exit 3), never silently skipped: a report built on half a file would mislead.
import { basename } from 'node:path';
import { InvalidInputError } from '../../lib/errors.js';
import { openFiles, type Files } from '../../lib/locations.js';
import type { S3Connection } from '../../lib/s3-connection.js';
import { decodeImage, type DecodedImage } from './attention-maps.js';

export interface ModelFile {
  encoder: { name: string; weights: string; inputSize: number | null };
  decoder: { cell: string; attention: string; [key: string]: unknown };
  parameters: [string, number[]][];
  beamSize?: number;
  maxCaptionLength?: number;
}

export interface CaptionEntry {
  id: string;
  caption: string;
  references: string[];
  /** An LLM's answer before it was cut to the one sentence in `caption`. */
  raw?: string;
  /** Per generated word, weights over grid.rows * grid.cols regions, row-major; absent for captioners without attention. */
  attention?: number[][];
}

/** Who wrote a captions file that no trained model did: an LLM behind an endpoint (caption-llm, the trainer). */
export interface CaptionerInfo {
  endpoint: string;
  model: string;
  latencyMs?: { p50: number; p95: number };
  /** Images asked for, and those that got no caption, by cause. */
  images?: number;
  failuresByCause: Record<string, number>;
}

export interface CaptionsFile {
  beamSize?: number;
  grid?: { rows: number; cols: number };
  captioner?: CaptionerInfo;
  captions: CaptionEntry[];
}

export interface HistoryEntry {
  epoch: number;
  step?: number;
  trainLoss?: number;
  valBleu4?: number;
  valLoss?: number;
  learningRate?: number;
}

export interface MetricsFile {
  valBleu4?: number;
  beamSize?: number;
  step?: number;
  epochs?: number;
  hyperparameters?: Record<string, unknown>;
  history: HistoryEntry[];
}

export interface EmbeddingsFile {
  /** The encoder's name, e.g. "inceptionv3". */
  encoder: string;
  /** "pretrained", "random" or a weights URI, when the file says; model.json's encoder.weights otherwise. */
  weights?: string;
  ids: string[];
  /** One pooled feature vector per id, all of the same length. */
  pooled: number[][];
}

export interface ResourceSample {
  /** Seconds since the run started. */
  t: number;
  rssBytes: number;
  gpuMemoryBytes?: number;
  /** 0 to 1. */
  gpuUtilization?: number;
  diskFreeBytes?: number;
  stepSeconds?: number;
  checkpointSaveSeconds?: number;
}

export interface ResourcesFile {
  samples: ResourceSample[];
  wallSeconds: number;
  peakRssBytes: number;
  backend: string;
  captionLatencyMs?: { p50: number; p95: number };
}

export const OPTIONAL_FILES = ['model.json', 'metrics.json', 'resources.json', 'embeddings.json'] as const;

export interface RunOutput {
  /** The directory or prefix as given. */
  location: string;
  /** Unique within one report: "InceptionV3 + GRU + Bahdanau", or the directory name. */
  label: string;
  model?: ModelFile;
  captions: CaptionsFile;
  metrics?: MetricsFile;
  resources?: ResourcesFile;
  embeddings?: EmbeddingsFile;
  /** images/<id>.png decoded (at most MAX_IMAGE_SIDE on the long side), for the ids that have one. */
  images: Map<string, DecodedImage>;
  /** Optional files this output lacks ("metrics.json", "images/"), for the report to say so. */
  missing: string[];
}

export interface LoadOptions {
  s3?: S3Connection;
  /** Images read per output: those of the first `maxImages` captions (default 16, as many as the trainer writes). */
  maxImages?: number;
}

export async function loadRunOutputs(locations: readonly string[], options: LoadOptions = {}): Promise<RunOutput[]> {
  const outputs: RunOutput[] = [];
  for (const location of locations) outputs.push(await loadRunOutput(location, options));
  const counts = new Map<string, number>();
  for (const o of outputs) counts.set(o.label, (counts.get(o.label) ?? 0) + 1);
  for (const o of outputs) if ((counts.get(o.label) ?? 0) > 1) o.label = `${o.label} (${dirName(o.location)})`;
  const seen = new Set<string>();
  outputs.forEach((o, i) => {
    if (seen.has(o.label)) o.label = `${o.label} #${i + 1}`;
    seen.add(o.label);
  });
  return outputs;
}

export async function loadRunOutput(location: string, options: LoadOptions = {}): Promise<RunOutput> {
  const files = openFiles(location, options.s3);
  if (location.endsWith('.json')) return loadCaptionsFile(location, files);
  const at = (name: string): string => files.join(location, name);
  if (!/^(s3|https?):\/\//.test(location) && !(await files.exists(location))) {
    throw new InvalidInputError('no such run outputs directory', { file: location, hint: 'give the outputs directory of a finished run (it holds captions.json)' });
  }
  if (!(await files.exists(at('captions.json')))) {
    throw new InvalidInputError('no captions.json: nothing to compare', { file: at('captions.json'), hint: 'give the outputs directory of a finished run' });
  }
  const captions = parseCaptions(await readJson(files, at('captions.json')), at('captions.json'));
  const missing: string[] = [];
  const optional = async <T>(name: string, parse: (value: unknown, file: string) => T): Promise<T | undefined> => {
    if (!(await files.exists(at(name)))) {
      missing.push(name);
      return undefined;
    }
    return parse(await readJson(files, at(name)), at(name));
  };
  const model = await optional('model.json', parseModel);
  const metrics = await optional('metrics.json', parseMetrics);
  const resources = await optional('resources.json', parseResources);
  const embeddings = await optional('embeddings.json', parseEmbeddings);
  const images = new Map<string, DecodedImage>();
  for (const c of captions.captions.slice(0, options.maxImages ?? 16)) {
    const file = at(`images/${c.id}.png`);
    if (!safeId(c.id) || !(await files.exists(file))) continue;
    const bytes = await files.readBytes(file);
    try {
      images.set(c.id, await decodeImage(bytes));
    } catch (err) {
      throw new InvalidInputError(`not a readable image: ${(err as Error).message}`, { file, cause: err });
    }
  }
  if (images.size === 0) missing.push('images/');
  return { location, label: model ? modelLabel(model) : dirName(location), model, captions, metrics, resources, embeddings, images, missing };
}

/**
 * A captions file given by itself (an LLM's, from caption-llm or a run's llm-captions.json): one more model
 * with captions only. The files beside it belong to whatever else lives there, so none is looked for.
 */
async function loadCaptionsFile(location: string, files: Files): Promise<RunOutput> {
  if (!(await files.exists(location))) throw new InvalidInputError('no such captions file', { file: location, hint: 'give a run outputs directory or a captions file (caption-llm -o)' });
  const captions = parseCaptions(await readJson(files, location), location);
  const label = captions.captioner ? `LLM ${captions.captioner.model}` : basename(location).replace(/\.json$/, '');
  return { location, label, captions, images: new Map(), missing: [] };
}

const ENCODER_NAMES: Record<string, string> = { inceptionv3: 'InceptionV3', densenet121: 'DenseNet121', 'efficientnet-lite1': 'EfficientNet-Lite1' };
const CELL_NAMES: Record<string, string> = { gru: 'GRU', lstm: 'LSTM' };
const ATTENTION_NAMES: Record<string, string> = { bahdanau: 'Bahdanau', luong: 'Luong' };

export const encoderName = (name: string): string => ENCODER_NAMES[name] ?? name;

export function modelLabel(model: ModelFile): string {
  return `${encoderName(model.encoder.name)} + ${CELL_NAMES[model.decoder.cell] ?? model.decoder.cell} + ${ATTENTION_NAMES[model.decoder.attention] ?? model.decoder.attention}`;
}

/** Trained decoder parameters: the sum of the products of model.json's parameter shapes. */
export function parameterCount(model: ModelFile): number {
  return model.parameters.reduce((sum, [, shape]) => sum + shape.reduce((a, b) => a * b, 1), 0);
}

function dirName(location: string): string {
  return basename(location.replace(/\/+$/, '')) || location;
}

/** Ids become file names: no path separators or parent references. */
function safeId(id: string): boolean {
  return id.length > 0 && !/[/\\]/.test(id) && id !== '.' && id !== '..';
}

async function readJson(files: Files, file: string): Promise<unknown> {
  const text = await files.readText(file);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new InvalidInputError(`not valid JSON: ${(err as Error).message}`, { file, cause: err });
  }
}

// Small structural checks: each failure names the file and the field, so the user knows what to fix.
class Check {
  constructor(readonly file: string) {}

  fail(field: string, message: string): never {
    throw new InvalidInputError(message, { file: this.file, field });
  }

  object(v: unknown, field: string): Record<string, unknown> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(field, 'must be an object');
    return v as Record<string, unknown>;
  }

  array(v: unknown, field: string): unknown[] {
    if (!Array.isArray(v)) this.fail(field, 'must be an array');
    return v;
  }

  string(v: unknown, field: string): string {
    if (typeof v !== 'string') this.fail(field, 'must be a string');
    return v;
  }

  number(v: unknown, field: string): number {
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(field, 'must be a finite number');
    return v;
  }

  optionalNumber(v: unknown, field: string): number | undefined {
    return v === undefined || v === null ? undefined : this.number(v, field);
  }

  numbers(v: unknown, field: string): number[] {
    return this.array(v, field).map((x, i) => this.number(x, `${field}[${i}]`));
  }
}

export function parseCaptions(value: unknown, file: string): CaptionsFile {
  const c = new Check(file);
  const o = c.object(value, '(top level)');
  let grid: CaptionsFile['grid'];
  if (o.grid !== undefined && o.grid !== null) {
    const g = c.object(o.grid, 'grid');
    grid = { rows: c.number(g.rows, 'grid.rows'), cols: c.number(g.cols, 'grid.cols') };
    if (!Number.isInteger(grid.rows) || !Number.isInteger(grid.cols) || grid.rows < 1 || grid.cols < 1) c.fail('grid', 'rows and cols must be positive integers');
  }
  const ids = new Set<string>();
  const captions = c.array(o.captions, 'captions').map((raw, i): CaptionEntry => {
    const f = `captions[${i}]`;
    const e = c.object(raw, f);
    const id = c.string(e.id, `${f}.id`);
    if (ids.has(id)) c.fail(`${f}.id`, `image "${id}" appears twice`);
    ids.add(id);
    const entry: CaptionEntry = {
      id,
      caption: c.string(e.caption, `${f}.caption`),
      references: e.references === undefined ? [] : c.array(e.references, `${f}.references`).map((r, j) => c.string(r, `${f}.references[${j}]`)),
    };
    if (e.raw !== undefined) entry.raw = c.string(e.raw, `${f}.raw`);
    if (e.attention !== undefined && e.attention !== null) {
      if (!grid) return c.fail(`${f}.attention`, 'attention weights need grid {rows, cols} to say their layout');
      const { rows, cols } = grid;
      const regions = rows * cols;
      entry.attention = c.array(e.attention, `${f}.attention`).map((w, j) => {
        const ws = c.numbers(w, `${f}.attention[${j}]`);
        if (ws.length !== regions) c.fail(`${f}.attention[${j}]`, `has ${ws.length} weights, the ${rows}x${cols} grid ${regions}`);
        return ws;
      });
    }
    return entry;
  });
  const captioner = o.captioner === undefined || o.captioner === null ? undefined : parseCaptioner(c, c.object(o.captioner, 'captioner'));
  return { ...(typeof o.beamSize === 'number' ? { beamSize: o.beamSize } : {}), ...(grid ? { grid } : {}), ...(captioner ? { captioner } : {}), captions };
}

function parseCaptioner(c: Check, o: Record<string, unknown>): CaptionerInfo {
  const info: CaptionerInfo = { endpoint: c.string(o.endpoint, 'captioner.endpoint'), model: c.string(o.model, 'captioner.model'), failuresByCause: {} };
  if (o.stats === undefined) return info;
  const s = c.object(o.stats, 'captioner.stats');
  if (s.latencyMs !== undefined && s.latencyMs !== null) {
    const l = c.object(s.latencyMs, 'captioner.stats.latencyMs');
    info.latencyMs = { p50: c.number(l.p50, 'captioner.stats.latencyMs.p50'), p95: c.number(l.p95, 'captioner.stats.latencyMs.p95') };
  }
  const images = c.optionalNumber(s.images, 'captioner.stats.images');
  if (images !== undefined) info.images = images;
  for (const [cause, n] of Object.entries(s.failuresByCause === undefined ? {} : c.object(s.failuresByCause, 'captioner.stats.failuresByCause'))) {
    info.failuresByCause[cause] = c.number(n, `captioner.stats.failuresByCause.${cause}`);
  }
  return info;
}

export function parseModel(value: unknown, file: string): ModelFile {
  const c = new Check(file);
  const o = c.object(value, '(top level)');
  const enc = c.object(o.encoder, 'encoder');
  const dec = c.object(o.decoder, 'decoder');
  const parameters = c.array(o.parameters, 'parameters').map((p, i): [string, number[]] => {
    const pair = c.array(p, `parameters[${i}]`);
    const shape = c.numbers(pair[1], `parameters[${i}][1]`);
    if (shape.some((d) => !Number.isInteger(d) || d < 0)) c.fail(`parameters[${i}][1]`, 'a shape holds non-negative integers');
    return [c.string(pair[0], `parameters[${i}][0]`), shape];
  });
  return {
    encoder: { name: c.string(enc.name, 'encoder.name'), weights: c.string(enc.weights, 'encoder.weights'), inputSize: typeof enc.inputSize === 'number' ? enc.inputSize : null },
    decoder: { ...dec, cell: c.string(dec.cell, 'decoder.cell'), attention: c.string(dec.attention, 'decoder.attention') },
    parameters,
    ...(typeof o.beamSize === 'number' ? { beamSize: o.beamSize } : {}),
    ...(typeof o.maxCaptionLength === 'number' ? { maxCaptionLength: o.maxCaptionLength } : {}),
  };
}

export function parseMetrics(value: unknown, file: string): MetricsFile {
  const c = new Check(file);
  const o = c.object(value, '(top level)');
  const history = c.array(o.history ?? [], 'history').map((raw, i): HistoryEntry => {
    const f = `history[${i}]`;
    const h = c.object(raw, f);
    const entry: HistoryEntry = { epoch: c.number(h.epoch, `${f}.epoch`) };
    for (const k of ['step', 'trainLoss', 'valBleu4', 'valLoss', 'learningRate'] as const) {
      const v = c.optionalNumber(h[k], `${f}.${k}`);
      if (v !== undefined) entry[k] = v;
    }
    return entry;
  });
  const out: MetricsFile = { history };
  for (const k of ['valBleu4', 'beamSize', 'step', 'epochs'] as const) {
    const v = c.optionalNumber(o[k], k);
    if (v !== undefined) out[k] = v;
  }
  if (o.hyperparameters !== undefined) out.hyperparameters = c.object(o.hyperparameters, 'hyperparameters');
  return out;
}

export function parseResources(value: unknown, file: string): ResourcesFile {
  const c = new Check(file);
  const o = c.object(value, '(top level)');
  const samples = c.array(o.samples, 'samples').map((raw, i): ResourceSample => {
    const f = `samples[${i}]`;
    const s = c.object(raw, f);
    const sample: ResourceSample = { t: c.number(s.t, `${f}.t`), rssBytes: c.number(s.rssBytes, `${f}.rssBytes`) };
    for (const k of ['gpuMemoryBytes', 'gpuUtilization', 'diskFreeBytes', 'stepSeconds', 'checkpointSaveSeconds'] as const) {
      const v = c.optionalNumber(s[k], `${f}.${k}`);
      if (v !== undefined) sample[k] = v;
    }
    return sample;
  });
  const out: ResourcesFile = { samples, wallSeconds: c.number(o.wallSeconds, 'wallSeconds'), peakRssBytes: c.number(o.peakRssBytes, 'peakRssBytes'), backend: c.string(o.backend, 'backend') };
  if (o.captionLatencyMs !== undefined && o.captionLatencyMs !== null) {
    const l = c.object(o.captionLatencyMs, 'captionLatencyMs');
    out.captionLatencyMs = { p50: c.number(l.p50, 'captionLatencyMs.p50'), p95: c.number(l.p95, 'captionLatencyMs.p95') };
  }
  return out;
}

export function parseEmbeddings(value: unknown, file: string): EmbeddingsFile {
  const c = new Check(file);
  const o = c.object(value, '(top level)');
  // The encoder may be named by a string or by an object like model.json's {name, weights}.
  let encoder: string;
  let weights: string | undefined;
  if (typeof o.encoder === 'object' && o.encoder !== null) {
    const e = c.object(o.encoder, 'encoder');
    encoder = c.string(e.name, 'encoder.name');
    if (e.weights !== undefined) weights = c.string(e.weights, 'encoder.weights');
  } else {
    encoder = c.string(o.encoder, 'encoder');
  }
  if (o.weights !== undefined) weights = c.string(o.weights, 'weights');
  const ids = c.array(o.ids, 'ids').map((x, i) => c.string(x, `ids[${i}]`));
  const pooled = c.array(o.pooled, 'pooled').map((row, i) => c.numbers(row, `pooled[${i}]`));
  if (pooled.length !== ids.length) c.fail('pooled', `has ${pooled.length} rows for ${ids.length} ids`);
  const dim = pooled[0]?.length ?? 0;
  pooled.forEach((row, i) => {
    if (row.length !== dim) c.fail(`pooled[${i}]`, `has ${row.length} values, pooled[0] ${dim}`);
  });
  return { encoder, ...(weights === undefined ? {} : { weights }), ids, pooled };
}
