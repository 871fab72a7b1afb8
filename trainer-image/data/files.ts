// File helpers shared by the on-disk dataset formats: local-path resolution (s3:// refused clearly for
// now), lazy image items, and the missing-image policy.
import { access, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { InvalidInputError } from '../../lib/errors.js';
import type { DatasetItem, DatasetProblem } from './dataset.js';

/** A dataset source as a local path. s3:// sources are not read by the trainer yet: a clear error says so. */
export function localSource(source: string | undefined, format: string): string {
  if (source === undefined || source === '') {
    throw new InvalidInputError(`dataset format ${format} needs a source directory or file`, { field: 'spec.dataset.source' });
  }
  if (source.startsWith('s3://')) {
    throw new InvalidInputError(`dataset source ${source}: s3:// datasets are not supported by the trainer yet`, {
      field: 'spec.dataset.source',
      hint: 'sync the dataset to a local directory or volume (e.g. aws s3 sync) and give its path',
    });
  }
  return source.startsWith('file://') ? fileURLToPath(source) : source;
}

export async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** An item whose image is read from disk only when needed. */
export function fileItem(id: string, split: string, captions: string[], path: string): DatasetItem {
  return {
    id,
    split,
    captions,
    image: async () => {
      try {
        return { kind: 'encoded', data: await readFile(path), path };
      } catch (err) {
        throw new InvalidInputError(`cannot read image: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { file: path, cause: err });
      }
    },
  };
}

/**
 * Drops items whose image file is missing, recording each as a problem. More than maxMissingFraction missing
 * means a wrong directory rather than a few lost files: that is an error naming the first one.
 */
export async function dropMissingImages(
  candidates: { item: DatasetItem; path: string }[],
  source: string,
  maxMissingFraction: number,
): Promise<{ items: DatasetItem[]; problems: DatasetProblem[] }> {
  const present = await Promise.all(candidates.map((c) => exists(c.path)));
  const problems: DatasetProblem[] = [];
  const items: DatasetItem[] = [];
  candidates.forEach((c, i) => {
    if (present[i]) items.push(c.item);
    else problems.push({ id: c.item.id, file: c.path, message: 'image file is missing' });
  });
  if (candidates.length > 0 && problems.length > maxMissingFraction * candidates.length) {
    throw new InvalidInputError(`${problems.length} of ${candidates.length} images are missing (first: ${problems[0]?.file ?? ''})`, {
      file: source,
      hint: 'check that the images directory belongs to this caption file',
    });
  }
  return { items, problems };
}
