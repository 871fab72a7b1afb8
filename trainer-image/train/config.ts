// The trainer's one configuration object, derived from a validated CaptionTrainingRun. Everything the
// training code reads comes from here; "auto" fields stay "auto" until hyperparameters.ts resolves them
// against the data (and those resolved values are then saved in every checkpoint).
import type { CaptionTrainingRun, CheckpointSpec, DatasetSpec, Encoder, LlmSpec, TrainingSpec } from '../../lib/api/types.js';
import type { AttentionKind } from '../model/attention.js';
import type { CellKind } from '../model/decoder-cells.js';
import { InvalidInputError } from '../../lib/errors.js';

export interface TrainConfig {
  run: { name: string; namespace: string };
  dataset: DatasetSpec;
  encoder: { name: Encoder; weights: string };
  decoder: { cell: CellKind; attention: AttentionKind; embeddingDim: number; hiddenDim: number; attentionDim: number; dropout: number };
  training: TrainingSpec;
  checkpoint: CheckpointSpec;
  /**
   * report: write report.html into the outputs at the end (spec.evaluation.report.enabled); llm: caption the
   * validation images with that endpoint too (spec.evaluation.llm). noRepeatNgramSize applies to validation's
   * greedy captions as well as the final beam search, so the validation metric ranks what the outputs will say.
   */
  evaluation: { beamSize: number; noRepeatNgramSize: number; lengthPenalty: number; report: boolean; llm?: LlmSpec };
  distributed: DistributedConfig;
}

/**
 * Where this process sits in the gang, from the torchrun-style environment the operator (or the local
 * supervisor, or the per-pod launcher) sets, plus the spec's timeouts. One process: rank 0 of 1.
 */
export interface DistributedConfig {
  rank: number;
  worldSize: number;
  localRank: number;
  masterAddr: string;
  masterPort: number;
  /** POD_IP: where this process listens; unset listens on every interface. */
  bindAddress?: string;
  /** The run's UID (or the local supervisor's session id): processes of another run are refused. */
  runId: string;
  /** The gang's launch attempt: processes of an older gang are refused. */
  attempt: number;
  rendezvousTimeoutSeconds: number;
  collectiveTimeoutSeconds?: number;
  compression: 'none' | 'float16';
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
    evaluation: { beamSize: spec.evaluation.beamSize, noRepeatNgramSize: spec.evaluation.noRepeatNgramSize, lengthPenalty: spec.evaluation.lengthPenalty, report: spec.evaluation.report.enabled, ...(spec.evaluation.llm ? { llm: spec.evaluation.llm } : {}) },
    distributed: distributedConfig(run, env),
  };
}

function distributedConfig(run: CaptionTrainingRun, env: NodeJS.ProcessEnv): DistributedConfig {
  const int = (name: string, fallback: number, min: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min) throw new InvalidInputError(`environment variable ${name}="${raw}" is not an integer >= ${min}`, { hint: 'the operator, `captionrun launch` and `captionrun train` set it; unset it to train alone' });
    return value;
  };
  const worldSize = int('WORLD_SIZE', 1, 1);
  const rank = int('RANK', 0, 0);
  if (rank >= worldSize) throw new InvalidInputError(`RANK=${rank} is not below WORLD_SIZE=${worldSize}`, { hint: 'ranks run from 0 to WORLD_SIZE - 1' });
  const r = run.spec.resources;
  return {
    rank,
    worldSize,
    localRank: int('LOCAL_RANK', 0, 0),
    masterAddr: env.MASTER_ADDR || '127.0.0.1',
    masterPort: int('MASTER_PORT', 29500, 1),
    bindAddress: env.POD_IP || undefined,
    runId: env.CAPTIONRUN_RUN_ID || `${run.metadata.namespace ?? 'default'}/${run.metadata.name}`,
    attempt: int('CAPTIONRUN_ATTEMPT', 0, 0),
    rendezvousTimeoutSeconds: r.rendezvousTimeoutSeconds,
    collectiveTimeoutSeconds: r.collectiveTimeoutSeconds,
    compression: r.gradientCompression,
  };
}
