// Where a run's model, optimizer and loop state come from, in one place, the way nanoGPT's `init_from`
// block decides between 'scratch' and 'resume': a checkpoint supplies everything it holds (decoder config
// and weights, the resolved hyperparameters, vocabulary, loop state, Adam moments and step count), so a
// resumed run never re-decides any of it; a fresh run derives each from the spec and the data.
import type { Logger } from '../../lib/telemetry/logger.js';
import type { Vocabulary } from '../data/tokenizer.js';
import { createDecoder, initialValues, type Decoder, type DecoderConfig } from '../model/decoder.js';
import { Adam, DEFAULT_ADAM } from './adam.js';
import type { TrainConfig } from './config.js';
import type { Hyperparameters } from './hyperparameters.js';
import { freshState, type TrainingData } from './loop.js';
import { restoreAdam, type RestoredParts, type TrainerState } from './snapshot.js';

export interface Start {
  decoder: Decoder;
  adam: Adam;
  hyper: Hyperparameters;
  vocabulary: Vocabulary;
  state: TrainerState;
}

/**
 * `restored` is the checkpoint every rank agreed on, or undefined to start fresh. `chooseHyperparameters`
 * resolves the spec's "auto" fields for a fresh run (it may measure memory on the new decoder).
 */
export async function startOrResume(
  config: TrainConfig,
  restored: RestoredParts | undefined,
  data: TrainingData,
  chooseHyperparameters: (decoder: Decoder) => Promise<Hyperparameters>,
  log: Logger,
): Promise<Start> {
  const adamFor = (decoder: Decoder): Adam => new Adam(decoder.params, { ...DEFAULT_ADAM, clipNorm: config.training.gradientClipNorm });
  if (restored) {
    const { state } = restored;
    warnOnDrift(config, state.config, log);
    const decoder = createDecoder(state.decoder, restored.weights);
    const adam = adamFor(decoder);
    restoreAdam(adam, restored.adamM, restored.adamV, state.adamSteps);
    return { decoder, adam, hyper: state.hyperparameters, vocabulary: restored.vocabulary, state };
  }
  const cfg: DecoderConfig = { ...config.decoder, vocabSize: data.vocabulary.size, featureDim: data.train.features.channels };
  const decoder = createDecoder(cfg, initialValues(cfg, config.training.seed));
  const hyper = await chooseHyperparameters(decoder);
  return { decoder, adam: adamFor(decoder), hyper, vocabulary: data.vocabulary, state: freshState(config, hyper, decoder) };
}

/** A resumed run keeps the checkpoint's model and hyperparameters; say so when the spec changed since. */
function warnOnDrift(now: TrainConfig, saved: TrainConfig, log: Logger): void {
  if (JSON.stringify(now.decoder) !== JSON.stringify(saved.decoder) || JSON.stringify(now.encoder) !== JSON.stringify(saved.encoder)) {
    log.warn({ field: 'spec.model', spec: now.decoder, checkpoint: saved.decoder }, "spec.model differs from the checkpoint's model; the checkpoint's model and hyperparameters are kept for this run");
  }
}
