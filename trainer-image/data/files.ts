// What the on-disk dataset formats share: where their files are (a directory, an s3:// prefix or an https://
// URL, through lib/locations.ts), lazy image items, and the missing-image policy.
import { InvalidInputError } from '../../lib/errors.js';
import { openFiles, type Files } from '../../lib/locations.js';
import type { S3Connection } from '../../lib/s3-connection.js';
import type { DatasetItem, DatasetProblem } from './dataset.js';

/** The files of the dataset at `source`; a missing source is an error naming spec.dataset.source. */
export function datasetFiles(source: string | undefined, format: string, s3: S3Connection = {}): Files {
  if (source === undefined || source === '') {
    throw new InvalidInputError(`dataset format ${format} needs a source directory or file`, { field: 'spec.dataset.source' });
  }
  return openFiles(source, s3);
}

/** An item whose image is read only when needed. */
export function fileItem(files: Files, id: string, split: string, captions: string[], location: string): DatasetItem {
  return {
    id,
    split,
    captions,
    image: async () => {
      try {
        return { kind: 'encoded', data: await files.readBytes(location), path: location };
      } catch (err) {
        if (!(err instanceof InvalidInputError)) throw err;
        throw new InvalidInputError(`cannot read image: ${err.message}`, { file: location, cause: err });
      }
    },
  };
}

/**
 * Drops items whose image file is missing, recording each as a problem. More than maxMissingFraction missing
 * means a wrong directory rather than a few lost files: that is an error naming the first one.
 */
export async function dropMissingImages(
  files: Files,
  candidates: { item: DatasetItem; path: string }[],
  source: string,
  maxMissingFraction: number,
): Promise<{ items: DatasetItem[]; problems: DatasetProblem[] }> {
  const present = await Promise.all(candidates.map((c) => files.exists(c.path)));
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
