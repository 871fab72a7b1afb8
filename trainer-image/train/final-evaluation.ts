// The end of a run: beam-search captions for every validation image, their BLEU-4, and the outputs a user
// keeps (the trained model as `captionrun caption` loads it, captions with attention weights, metrics)
// written to one directory.
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { tf } from '../backend.js';
import type { DatasetItem } from '../data/dataset.js';
import { END_ID, START_ID, type Vocabulary } from '../data/tokenizer.js';
import { beamSearch } from '../model/decoder-search.js';
import { paramRecord, type Decoder } from '../model/decoder.js';
import { describeModel, writeTrainedModel, type ModelDescription } from '../model/trained-model.js';
import type { TrainerState } from './snapshot.js';
import { bleu4 as corpusBleu4, type ValidationSet } from './validation.js';

export interface GeneratedCaption {
  id: string;
  caption: string;
  references: string[];
  /** Attention weights over the map's regions for each word of `caption`. */
  attention: number[][];
}

export interface FinalResult {
  bleu4: number;
  beamSize: number;
  captions: GeneratedCaption[];
  outputDir: string;
}

export function beamCaptions(decoder: Decoder, set: ValidationSet, items: readonly DatasetItem[], vocabulary: Vocabulary, beamSize: number, maxWords: number): GeneratedCaption[] {
  const p = paramRecord(decoder);
  return set.table.features.map((map, i) => {
    const features = tf.tensor3d(map, [1, set.table.regions, set.table.channels]);
    const c = beamSearch(decoder.cfg, p, features, beamSize, { startId: START_ID, endId: END_ID, maxLength: maxWords });
    features.dispose();
    const item = items[i] as DatasetItem;
    return { id: item.id, caption: vocabulary.decode(c.tokens).join(' '), references: item.captions, attention: c.alphas.map((a) => Array.from(a, (x) => Math.round(x * 1e4) / 1e4)) };
  });
}

export async function finalEvaluation(
  decoder: Decoder,
  set: ValidationSet,
  items: readonly DatasetItem[],
  vocabulary: Vocabulary,
  state: TrainerState,
  beamSize: number,
  outputDir: string,
  encoder: ModelDescription['encoder'],
): Promise<FinalResult> {
  const captions = beamCaptions(decoder, set, items, vocabulary, beamSize, state.hyperparameters.maxCaptionLength - 2);
  const bleu4 = corpusBleu4(
    set,
    captions.map((c) => c.caption),
  );
  const dir = resolve(outputDir);
  await writeTrainedModel(dir, { description: describeModel(decoder, encoder, state.hyperparameters.maxCaptionLength, beamSize), decoder, vocabulary });
  await writeFile(join(dir, 'captions.json'), `${JSON.stringify({ beamSize, grid: set.table.grid, captions }, null, 1)}\n`);
  const metrics = { valBleu4: bleu4, beamSize, step: state.step, epochs: state.cursor.epoch, hyperparameters: state.hyperparameters, history: state.history };
  await writeFile(join(dir, 'metrics.json'), `${JSON.stringify(metrics, null, 2)}\n`);
  return { bleu4, beamSize, captions, outputDir: dir };
}
