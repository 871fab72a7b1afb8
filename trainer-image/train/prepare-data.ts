// From the dataset spec to what the loop trains on: the splits, their encoder features, the vocabulary
// (built from the training captions, or the checkpoint's on resume) and the (image, caption) examples.
import { connectionOf } from '../../lib/s3-connection.js';
import type { Logger } from '../../lib/telemetry/logger.js';
import type { Dataset, DatasetItem } from '../data/dataset.js';
import { DEFAULT_VALIDATION_SPLIT, openDataset } from '../data/open-dataset.js';
import type { Vocabulary } from '../data/tokenizer.js';
import type { Example } from './batches.js';
import type { TrainConfig } from './config.js';
import { loadFeatureTable, type FeatureTable } from './features.js';
import { buildVocabulary, resolveMaxCaptionLength } from './hyperparameters.js';
import type { TrainingData } from './loop.js';

/** The validation split: the spec's, or the format's conventional one; empty when the dataset has none. */
export function validationItems(dataset: Dataset, config: TrainConfig): DatasetItem[] {
  const name = config.dataset.validationSplit ?? DEFAULT_VALIDATION_SPLIT[config.dataset.format];
  return dataset.splits.includes(name) ? dataset.items(name) : [];
}

export interface PreparedData {
  data: TrainingData;
  maxCaptionLength: number;
  /** Validation items aligned with data.val.table, for final captions and attention checks. */
  valItems: DatasetItem[];
}

/** Told as images are encoded, counted over both splits. */
export type FeatureProgress = (done: number, total: number) => void;

export async function prepareData(config: TrainConfig, restored: { vocabulary: Vocabulary; maxCaptionLength: number } | undefined, log: Logger, onFeatures?: FeatureProgress): Promise<PreparedData> {
  const dataset = await openDataset(config.dataset, { s3: connectionOf(config.checkpoint.store.s3) });
  for (const p of dataset.problems) log.warn(p, `dataset: ${p.message}`);
  const trainItems = dataset.items(config.dataset.trainSplit);
  const valItems = validationItems(dataset, config);
  const captions = trainItems.flatMap((it) => it.captions);
  const vocabulary = restored?.vocabulary ?? buildVocabulary(config.training, captions);
  const maxCaptionLength = restored?.maxCaptionLength ?? resolveMaxCaptionLength(config.training, captions);
  log.info({ source: dataset.source, train: trainItems.length, val: valItems.length, vocabulary: vocabulary.size, maxCaptionLength }, 'dataset opened');
  const total = trainItems.length + valItems.length;
  const trainTable = await loadFeatureTable(config, trainItems, log, (done) => onFeatures?.(done, total));
  const valTable = await loadFeatureTable(config, valItems, log, (done) => onFeatures?.(trainItems.length + done, total));
  const keptVal = alignItems(valTable, valItems);
  return {
    data: {
      vocabulary,
      train: { table: trainTable, examples: examplesOf(trainTable, alignItems(trainTable, trainItems), vocabulary, maxCaptionLength) },
      val: {
        table: valTable,
        references: keptVal.map((it) => [...it.captions]),
        examples: examplesOf(valTable, keptVal, vocabulary, maxCaptionLength),
      },
    },
    maxCaptionLength,
    valItems: keptVal,
  };
}

function alignItems(table: FeatureTable, items: readonly DatasetItem[]): DatasetItem[] {
  const byId = new Map(items.map((it) => [it.id, it]));
  return table.ids.map((id) => byId.get(id) as DatasetItem);
}

export function examplesOf(table: FeatureTable, items: readonly DatasetItem[], vocabulary: Vocabulary, maxCaptionLength: number): Example[] {
  const out: Example[] = [];
  items.forEach((item, image) => {
    for (const caption of item.captions) out.push({ image, ids: vocabulary.encode(caption, maxCaptionLength) });
  });
  if (table.features.length !== items.length) throw new Error('feature table and items are not aligned');
  return out;
}
