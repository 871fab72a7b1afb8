// A trained captioner as a run leaves it in its outputs: model.json (which encoder with which weights and
// input size, how features are stored, the decoder's configuration and parameter layout, the caption
// length and beam size it was evaluated with), decoder.f32 (the parameters, little-endian float32 in that
// layout) and vocabulary.json. Everything `captionrun caption` needs to caption new images exactly as the
// trainer captioned its validation images.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Encoder } from '../../lib/api/types.js';
import { InvalidInputError } from '../../lib/errors.js';
import { openFiles } from '../../lib/locations.js';
import type { S3Connection } from '../../lib/s3-connection.js';
import { Vocabulary, type VocabularyJSON } from '../data/tokenizer.js';
import { createDecoder, parameterShapes, type Decoder, type DecoderConfig } from './decoder.js';
import { packParameters, unpackTensors } from './packed-tensors.js';

export const MODEL_FILE = 'model.json';
export const DECODER_WEIGHTS_FILE = 'decoder.f32';
export const VOCABULARY_FILE = 'vocabulary.json';

export interface ModelDescription {
  format: 1;
  /** The frozen encoder the decoder was trained on; inputSize null means the encoder's native size. */
  encoder: { name: Encoder; weights: string; inputSize: number | null };
  /** The trainer read features from the float16 cache: new images' features are rounded the same way. */
  featureStorage: 'float16';
  decoder: DecoderConfig;
  parameters: [string, number[]][];
  dtype: 'float32';
  byteOrder: 'little-endian';
  /** Tokens per caption including <start> and <end>: captions are at most maxCaptionLength - 2 words. */
  maxCaptionLength: number;
  beamSize: number;
  /** How the run's final captions were decoded (absent in models written before these options: 0, 0). */
  noRepeatNgramSize?: number;
  lengthPenalty?: number;
}

/** How the final captions are decoded, recorded in model.json so `captionrun caption` decodes the same way. */
export interface Decoding {
  beamSize: number;
  noRepeatNgramSize: number;
  lengthPenalty: number;
}

export interface TrainedModel {
  description: ModelDescription;
  decoder: Decoder;
  vocabulary: Vocabulary;
}

export async function writeTrainedModel(dir: string, model: TrainedModel): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, DECODER_WEIGHTS_FILE), packParameters(model.decoder));
  await writeFile(join(dir, MODEL_FILE), `${JSON.stringify(model.description, null, 2)}\n`);
  await writeFile(join(dir, VOCABULARY_FILE), `${JSON.stringify(model.vocabulary.toJSON())}\n`);
}

export function describeModel(decoder: Decoder, encoder: ModelDescription['encoder'], maxCaptionLength: number, decoding: Decoding): ModelDescription {
  return { format: 1, encoder, featureStorage: 'float16', decoder: decoder.cfg, parameters: parameterShapes(decoder.cfg), dtype: 'float32', byteOrder: 'little-endian', maxCaptionLength, ...decoding };
}

/** Loads a run's outputs from a directory or an s3:// prefix; a missing or inconsistent file names itself. */
export async function loadTrainedModel(location: string, s3: S3Connection = {}): Promise<TrainedModel> {
  const files = openFiles(location, s3);
  const at = (name: string): string => files.join(location, name);
  let description: ModelDescription;
  try {
    description = JSON.parse(await files.readText(at(MODEL_FILE))) as ModelDescription;
  } catch (err) {
    throw new InvalidInputError(`no readable ${MODEL_FILE}: ${(err as Error).message}`, { file: at(MODEL_FILE), hint: 'give the outputs directory of a finished run (it holds model.json, decoder.f32 and vocabulary.json)', cause: err });
  }
  if (description.format !== 1) throw new InvalidInputError(`model format ${String(description.format)} is not 1`, { file: at(MODEL_FILE) });
  const expected = parameterShapes(description.decoder);
  if (JSON.stringify(expected) !== JSON.stringify(description.parameters)) {
    throw new InvalidInputError('the parameter layout does not match the decoder configuration', { file: at(MODEL_FILE) });
  }
  const bytes = await files.readBytes(at(DECODER_WEIGHTS_FILE));
  let weights: Map<string, Float32Array>;
  try {
    weights = unpackTensors(bytes, expected);
  } catch (err) {
    throw new InvalidInputError((err as Error).message, { file: at(DECODER_WEIGHTS_FILE), cause: err });
  }
  const vocabulary = Vocabulary.fromJSON(JSON.parse(await files.readText(at(VOCABULARY_FILE))) as VocabularyJSON);
  if (vocabulary.size !== description.decoder.vocabSize) {
    throw new InvalidInputError(`the vocabulary has ${vocabulary.size} words, the decoder ${description.decoder.vocabSize}`, { file: at(VOCABULARY_FILE) });
  }
  return { description, decoder: createDecoder(description.decoder, weights), vocabulary };
}
