// From the dataset spec to what the loop trains on: the splits, the vocabulary (built from the training
// captions, or the checkpoint's on resume), the (image, caption) examples, and the encoder features: every
// image's entry made sure of in the shared cache (sharded across ranks), then the training images read per
// batch from there and the validation subset held in memory. Captions, vocabulary and the cache keys are the
// only per-image things in memory; the features stay on disk or in S3.
import { connectionOf } from '../../lib/s3-connection.js';
import type { Logger } from '../../lib/telemetry/logger.js';
import type { Dataset, DatasetItem } from '../data/dataset.js';
import { DEFAULT_VALIDATION_SPLIT, openDataset } from '../data/open-dataset.js';
import type { Vocabulary } from '../data/tokenizer.js';
import type { ProcessGroup } from '../distributed/process-group.js';
import type { ExtractProgress } from '../features/extract-features.js';
import type { ImageKeys } from '../features/image-keys.js';
import { Examples } from './batches.js';
import type { TrainConfig } from './config.js';
import { CachedFeatures } from './features.js';
import { buildVocabulary, resolveMaxCaptionLength } from './hyperparameters.js';
import type { TrainingData } from './loop.js';
import { cacheDataset } from './shard-features.js';

/** The validation images: the first spec.training.validationImages of the spec's split (or the format's conventional one); none when the dataset has none. */
export function validationItems(dataset: Dataset, config: TrainConfig): DatasetItem[] {
  const name = config.dataset.validationSplit ?? DEFAULT_VALIDATION_SPLIT[config.dataset.format];
  return dataset.splits.includes(name) ? dataset.items(name).slice(0, config.training.validationImages) : [];
}

export interface PreparedData {
  data: TrainingData;
  maxCaptionLength: number;
  /** Validation items aligned with data.val.table, for final captions and attention checks. */
  valItems: DatasetItem[];
}

/** Told as this rank's share of both splits' images is checked and encoded. */
export type FeatureProgress = (progress: ExtractProgress) => void;

/** A process alone: no peers to share the extraction with. */
const ALONE = { rank: 0, worldSize: 1, broadcast: async (data: Uint8Array | undefined) => data ?? new Uint8Array() };

export async function prepareData(
  config: TrainConfig,
  restored: { vocabulary: Vocabulary; maxCaptionLength: number } | undefined,
  log: Logger,
  onFeatures?: FeatureProgress,
  group: Pick<ProcessGroup, 'rank' | 'worldSize' | 'broadcast'> = ALONE,
): Promise<PreparedData> {
  const dataset = await openDataset(config.dataset, { s3: connectionOf(config.checkpoint.store.s3) });
  for (const p of dataset.problems) log.warn(p, `dataset: ${p.message}`);
  const trainItems = dataset.items(config.dataset.trainSplit);
  const valItems = validationItems(dataset, config);
  const captions = trainItems.flatMap((it) => it.captions);
  const vocabulary = restored?.vocabulary ?? buildVocabulary(config.training, captions);
  const maxCaptionLength = restored?.maxCaptionLength ?? resolveMaxCaptionLength(config.training, captions);
  log.info({ source: dataset.source, train: trainItems.length, val: valItems.length, vocabulary: vocabulary.size, maxCaptionLength }, 'dataset opened');
  const { cache, shape, keys, index } = await cacheDataset(config, dataset.source, [...trainItems, ...valItems], group, log, onFeatures);
  const train = kept(trainItems, keys.slice(0, trainItems.length));
  const val = kept(valItems, keys.slice(trainItems.length));
  const features = new CachedFeatures(cache, shape, train.keys, index);
  if (group.rank === 0) {
    const float32Bytes = train.items.length * shape.regions * shape.channels * 4;
    log.info(
      { cache: cache.namespace(shape), images: train.items.length, float32GiB: round(float32Bytes / 2 ** 30), validationImages: val.items.length },
      `training features: read per batch from ${cache.namespace(shape)} (${train.items.length} images, ${round(float32Bytes / 2 ** 30)} GiB as float32, never all in memory); the ${val.items.length} validation images held in memory`,
    );
  }
  const valTable = await new CachedFeatures(cache, shape, val.keys, index).table(val.items.map((it) => it.id));
  return {
    data: {
      vocabulary,
      train: { features, examples: examplesOf(train.items, vocabulary, maxCaptionLength) },
      val: { table: valTable, references: val.items.map((it) => [...it.captions]), examples: examplesOf(val.items, vocabulary, maxCaptionLength) },
    },
    maxCaptionLength,
    valItems: val.items,
  };
}

/** The items whose images could be read, with their keys. */
function kept(items: readonly DatasetItem[], keys: ImageKeys): { items: DatasetItem[]; keys: ImageKeys } {
  const positions: number[] = [];
  for (let i = 0; i < items.length; i++) if (keys.has(i)) positions.push(i);
  return { items: positions.map((i) => items[i] as DatasetItem), keys: keys.pick(positions) };
}

/** One example per (image, caption); `image` indexes `items`. */
export function examplesOf(items: readonly Pick<DatasetItem, 'captions'>[], vocabulary: Vocabulary, maxCaptionLength: number): Examples {
  const count = items.reduce((n, item) => n + item.captions.length, 0);
  const images = new Int32Array(count);
  const tokens = new Int32Array(count * maxCaptionLength);
  let at = 0;
  items.forEach((item, image) => {
    for (const caption of item.captions) {
      images[at] = image;
      tokens.set(vocabulary.encode(caption, maxCaptionLength), at * maxCaptionLength);
      at += 1;
    }
  });
  return new Examples(images, tokens, maxCaptionLength);
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
