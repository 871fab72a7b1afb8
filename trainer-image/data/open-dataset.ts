// From spec.dataset to a Dataset: the one entry point the trainer and `extract-features` use. An s3:// source
// is reached through `options.s3` (the trainer passes its checkpoint store's connection).
import type { DatasetSpec } from '../../lib/api/types.js';
import { InvalidInputError } from '../../lib/errors.js';
import type { Dataset } from './dataset.js';
import { openFlickr8k, type OpenOptions } from './flickr8k.js';
import { openKarpathy } from './karpathy.js';
import { openSynthetic } from './synthetic.js';

/** The validation split each format calls its own when spec.dataset.validationSplit is absent. */
export const DEFAULT_VALIDATION_SPLIT: Record<DatasetSpec['format'], string> = { synthetic: 'val', flickr8k: 'dev', karpathy: 'val' };

export async function openDataset(spec: Pick<DatasetSpec, 'format' | 'source' | 'synthetic'>, options: OpenOptions = {}): Promise<Dataset> {
  switch (spec.format) {
    case 'synthetic':
      return openSynthetic(spec.synthetic ?? {});
    case 'flickr8k':
      return openFlickr8k(spec.source, options);
    case 'karpathy':
      return openKarpathy(spec.source, options);
    default:
      throw new InvalidInputError(`unknown dataset format "${String(spec.format)}"`, { field: 'spec.dataset.format' });
  }
}
