// Reads references and candidates from the formats people have: COCO annotations
// ({"annotations": [{"image_id", "caption"}]}), COCO results ([{"image_id", "caption"}]) and a plain map
// ({"<image>": ["caption", ...]} or {"<image>": "caption"}). Image ids become strings.
import { readFile } from 'node:fs/promises';
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

/** One candidate per image; an image with two is an error naming it (the toolkit would assert). */
export async function readCandidates(file: string): Promise<Map<ImageId, string>> {
  const json = await readJson(file);
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
