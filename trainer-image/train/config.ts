// The trainer's one configuration object, derived from a validated CaptionTrainingRun. Everything the
// training code reads comes from here; "auto" fields stay "auto" until hyperparameters.ts resolves them
// against the data (and those resolved values are then saved in every checkpoint).
import type { CaptionTrainingRun, CheckpointSpec, DatasetSpec, Encoder, TrainingSpec } from '../../lib/api/types.js';
import type { AttentionKind } from '../model/attention.js';
import type { CellKind } from '../model/decoder-cells.js';

export interface TrainConfig {
  run: { name: string; namespace: string };
  dataset: DatasetSpec;
  encoder: { name: Encoder; weights: string };
  decoder: { cell: CellKind; attention: AttentionKind; embeddingDim: number; hiddenDim: number; attentionDim: number; dropout: number };
  training: TrainingSpec;
  checkpoint: CheckpointSpec;
  evaluation: { beamSize: number };
  /** Global batch = batchSize x worldSize (learning-rate scaling); the rank keys this process's data order. */
  distributed: { rank: number; worldSize: number };
}

export function trainConfig(run: CaptionTrainingRun, env: NodeJS.ProcessEnv = process.env): TrainConfig {
  const { spec } = run;
  return {
    run: { name: run.metadata.name, namespace: run.metadata.namespace ?? 'default' },
    dataset: spec.dataset,
    encoder: { name: spec.model.encoder, weights: spec.model.encoderWeights },
    decoder: {
      cell: spec.model.decoder,
      attention: spec.model.attention,
      embeddingDim: spec.model.embeddingDim,
      hiddenDim: spec.model.hiddenDim,
      attentionDim: spec.model.attentionDim,
      dropout: spec.model.dropout,
    },
    training: spec.training,
    checkpoint: spec.checkpoint,
    evaluation: { beamSize: spec.evaluation.beamSize },
    distributed: { rank: Number(env.RANK ?? 0), worldSize: Number(env.WORLD_SIZE ?? 1) },
  };
}
