// Reads references and candidates from the formats people have: COCO annotations
// ({"annotations": [{"image_id", "caption"}]}), COCO results ([{"image_id", "caption"}]), a plain map
// ({"<image>": ["caption", ...]} or {"<image>": "caption"}), and the captions.json of a run's outputs or of
// `caption-llm` ({"captions": [{"id", "caption", "references"}]}), which carries its own references.
// Image ids become strings.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { InvalidInputError } from '../../lib/errors.js';
import type { ImageId } from './captions.js';

interface Pair {
  image_id?: unknown;
  caption?: unknown;
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new InvalidInputError(`cannot read: ${(err as Error).message}`, { file });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new InvalidInputError(`not JSON: ${(err as Error).message}`, { file });
  }
}

function pairs(list: unknown[], file: string, field: string): Array<[ImageId, string]> {
  return list.map((item, i) => {
    const p = (item ?? {}) as Pair;
    if ((typeof p.image_id !== 'string' && typeof p.image_id !== 'number') || typeof p.caption !== 'string') {
      throw new InvalidInputError('each entry needs "image_id" (string or number) and "caption" (string)', { file, field: `${field}[${i}]` });
    }
    return [String(p.image_id), p.caption];
  });
}

function mapEntries(value: object, file: string): Array<[ImageId, string[]]> {
  return Object.entries(value).map(([id, v]) => {
    if (typeof v === 'string') return [id, [v]];
    if (Array.isArray(v) && v.every((c) => typeof c === 'string')) return [id, v as string[]];
    throw new InvalidInputError('a caption map holds a caption or a list of captions per image', { file, field: id });
  });
}

export async function readReferences(file: string): Promise<Map<ImageId, string[]>> {
  const json = await readJson(file);
  const refs = new Map<ImageId, string[]>();
  if (json !== null && typeof json === 'object' && !Array.isArray(json) && 'annotations' in json) {
    const anns = (json as { annotations: unknown }).annotations;
    if (!Array.isArray(anns)) throw new InvalidInputError('"annotations" must be a list', { file, field: 'annotations' });
    for (const [id, caption] of pairs(anns, file, 'annotations')) refs.set(id, [...(refs.get(id) ?? []), caption]);
    return refs;
  }
  if (json !== null && typeof json === 'object' && !Array.isArray(json)) {
    for (const [id, list] of mapEntries(json, file)) refs.set(id, list);
    return refs;
  }
  if (Array.isArray(json)) {
    for (const [id, caption] of pairs(json, file, '')) refs.set(id, [...(refs.get(id) ?? []), caption]);
    return refs;
  }
  throw new InvalidInputError('expected COCO annotations, a [{image_id, caption}] list or an {"<image>": [captions]} map', { file });
}

/** One candidate file: its captions, the references it carries (captions.json) and its caption latency. */
export interface CandidateFile {
  file: string;
  /** "LLM <model>" for an LLM's captions, else the directory (captions.json) or file name. */
  label: string;
  candidates: Map<ImageId, string>;
  references?: Map<ImageId, string[]>;
  latencyMs?: { p50: number; p95: number };
}

interface CaptionsJson {
  captions: unknown[];
  captioner?: { model?: unknown; stats?: { latencyMs?: { p50?: unknown; p95?: unknown } | null } };
}

const isCaptionsJson = (json: unknown): json is CaptionsJson => json !== null && typeof json === 'object' && Array.isArray((json as { captions?: unknown }).captions);

function latencyOf(value: { p50?: unknown; p95?: unknown } | null | undefined): CandidateFile['latencyMs'] {
  return value && typeof value.p50 === 'number' && typeof value.p95 === 'number' ? { p50: value.p50, p95: value.p95 } : undefined;
}

export async function readCandidateFile(file: string): Promise<CandidateFile> {
  const json = await readJson(file);
  if (!isCaptionsJson(json)) return { file, label: basename(file).replace(/\.json$/, ''), candidates: candidatesOf(json, file) };
  const candidates = new Map<ImageId, string>();
  const references = new Map<ImageId, string[]>();
  json.captions.forEach((item, i) => {
    const e = (item ?? {}) as { id?: unknown; caption?: unknown; references?: unknown };
    if (typeof e.id !== 'string' || typeof e.caption !== 'string') throw new InvalidInputError('each entry needs "id" and "caption" strings', { file, field: `captions[${i}]` });
    if (candidates.has(e.id)) throw new InvalidInputError(`image "${e.id}" appears twice`, { file, field: `captions[${i}].id` });
    candidates.set(e.id, e.caption);
    if (Array.isArray(e.references) && e.references.every((r) => typeof r === 'string')) references.set(e.id, e.references as string[]);
  });
  const model = json.captioner?.model;
  // A trained run keeps its caption latency in resources.json beside captions.json.
  const resourcesFile = join(dirname(file), 'resources.json');
  const resources = typeof model !== 'string' && existsSync(resourcesFile) ? ((await readJson(resourcesFile)) as { captionLatencyMs?: { p50?: unknown; p95?: unknown } }) : undefined;
  const latencyMs = latencyOf(json.captioner?.stats?.latencyMs ?? resources?.captionLatencyMs);
  return {
    file,
    label: typeof model === 'string' ? `LLM ${model}` : basename(dirname(file)) || file,
    candidates,
    ...(references.size > 0 ? { references } : {}),
    ...(latencyMs ? { latencyMs } : {}),
  };
}

/** One candidate per image; an image with two is an error naming it (the toolkit would assert). */
function candidatesOf(json: unknown, file: string): Map<ImageId, string> {
  let entries: Array<[ImageId, string[]]>;
  if (Array.isArray(json)) {
    const grouped = new Map<ImageId, string[]>();
    for (const [id, caption] of pairs(json, file, '')) grouped.set(id, [...(grouped.get(id) ?? []), caption]);
    entries = [...grouped];
  } else if (json !== null && typeof json === 'object') {
    entries = mapEntries(json, file);
  } else {
    throw new InvalidInputError('expected a [{image_id, caption}] list or an {"<image>": "caption"} map', { file });
  }
  const several = entries.filter(([, list]) => list.length !== 1).map(([id]) => id);
  if (several.length > 0) {
    throw new InvalidInputError(`images need exactly one candidate caption: ${several.slice(0, 10).join(', ')}${several.length > 10 ? ', ...' : ''}`, { file });
  }
  return new Map(entries.map(([id, list]) => [id, list[0] ?? '']));
}
