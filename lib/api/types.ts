// TypeScript view of the CaptionTrainingRun API. The schema in schema.ts is the source of truth for
// validation and the CRD; these types describe a spec after validation filled in its defaults
// (validate.ts returns them), so defaulted fields are not optional here.
import type { TrainingStage } from '../telemetry/progress-report.js';
import type { ATTENTIONS, DATASET_FORMATS, DECODERS, ENCODERS, PHASES } from './schema.js';

export type Encoder = (typeof ENCODERS)[number];
export type Decoder = (typeof DECODERS)[number];
export type Attention = (typeof ATTENTIONS)[number];
export type DatasetFormat = (typeof DATASET_FORMATS)[number];
export type Phase = (typeof PHASES)[number];
export type Auto = 'auto';

export interface SyntheticOptions {
  images: number;
  seed: number;
  imageSize: number;
  maxObjects: number;
  noise: number;
}

export interface DatasetSpec {
  format: DatasetFormat;
  source?: string;
  trainSplit: string;
  validationSplit?: string;
  synthetic?: SyntheticOptions;
  /** An s3://bucket/prefix or a directory; absent: the trainer's work directory (a pod's cache volume). */
  featureCache?: string;
}

export interface ModelSpec {
  encoder: Encoder;
  /** "pretrained", "random", or a tfjs layers model URI. */
  encoderWeights: string;
  decoder: Decoder;
  attention: Attention;
  embeddingDim: number;
  hiddenDim: number;
  attentionDim: number;
  dropout: number;
}

/** The shape each schedule needs is enforced by the CRD's CEL rules (and validate.ts). */
export type TeacherForcingSpec =
  | { schedule: 'constant'; start: number }
  | { schedule: 'linear'; start: number; end: number; decaySteps: number }
  | { schedule: 'inverseSigmoid'; start: number; end: number; k: number };

export interface TrainingSpec {
  epochs: number;
  batchSize: number | Auto;
  /** Absent: 1e-3 scaled linearly with the global batch size. */
  learningRate?: number;
  maxCaptionLength: number | Auto;
  vocabularySize: number | Auto;
  minWordCount: number;
  /** Shorthand for teacherForcing {schedule: constant, start}; validation allows one of the two. */
  teacherForcingRatio?: number;
  teacherForcing?: TeacherForcingSpec;
  gradientCheckpointing: { enabled: boolean; blockSteps: number };
  lrSchedule: {
    type: 'constant' | 'plateau' | 'cosine';
    warmupSteps: number;
    factor: number;
    patience: number;
    minLearningRate: number;
  };
  validationMetric: 'bleu4' | 'cider' | 'loss' | 'none';
  /** The first this many validation images are validated on. */
  validationImages: number;
  earlyStoppingPatience: number;
  gradientClipNorm: number;
  attentionRegularization: number;
  /** Label smoothing epsilon of the training loss; 0 is plain cross-entropy. */
  labelSmoothing: number;
  seed: number;
  precision: 'float32' | 'float16-storage';
}

export interface Toleration {
  key?: string;
  operator?: 'Exists' | 'Equal';
  value?: string;
  effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
  tolerationSeconds?: number;
}

export interface ResourcesSpec {
  workers: number;
  gpusPerWorker: number;
  image?: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  requests?: Record<string, string>;
  limits?: Record<string, string>;
  nodeSelector?: Record<string, string>;
  tolerations?: Toleration[];
  priorityClassName?: string;
  serviceAccountName?: string;
  terminationGracePeriodSeconds: number;
  rendezvousTimeoutSeconds: number;
  /** Absent: max(60 s, 10 x the median step time). */
  collectiveTimeoutSeconds?: number;
  gradientCompression: 'none' | 'float16';
}

export interface S3StoreSpec {
  bucket: string;
  prefix: string;
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
  credentialsSecret?: string;
  useWorkloadIdentity?: boolean;
}

export interface CheckpointSpec {
  store: {
    s3?: S3StoreSpec;
    pvc?: { claimName: string; subPath: string };
    local?: { path: string };
  };
  everySteps?: number;
  everyEpoch: boolean;
  keepLast: number;
  keepBest: number;
  hash: 'sha256' | 'blake3';
  whenBusy: 'wait' | 'skip';
}

export interface RestartPolicySpec {
  backoffLimit: number;
  backoffSeconds: number;
  maxBackoffSeconds: number;
  retryableExitCodes?: number[];
}

export interface LlmSpec {
  endpoint: string;
  model: string;
  apiKeySecret?: { name: string; key: string };
  prompt: string;
  concurrency: number;
  timeoutSeconds: number;
}

export interface EvaluationSpec {
  beamSize: number;
  /** Decoding refuses words that would repeat an n-gram of this size; 0 allows repeats. */
  noRepeatNgramSize: number;
  /** GNMT length penalty alpha for ranking finished beams; 0 ranks by log-probability. */
  lengthPenalty: number;
  llm?: LlmSpec;
  report: { enabled: boolean };
}

export interface MonitoringSpec {
  thresholds: {
    gpuMemoryPercent: number;
    gpuIdlePercent: number;
    diskFreePercent: number;
    checkpointStaleSeconds: number;
  };
  alertmanagerURL?: string;
}

export interface CaptionTrainingRunSpec {
  dataset: DatasetSpec;
  model: ModelSpec;
  training: TrainingSpec;
  resources: ResourcesSpec;
  checkpoint: CheckpointSpec;
  restartPolicy: RestartPolicySpec;
  evaluation: EvaluationSpec;
  monitoring: MonitoringSpec;
  suspend: boolean;
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export interface CaptionTrainingRunStatus {
  phase?: Phase;
  conditions?: Condition[];
  observedGeneration?: number;
  attempt?: number;
  epoch?: number;
  step?: number;
  loss?: number;
  valBleu4?: number;
  restarts?: number;
  lastFailure?: { reason?: string; message?: string; pod?: string; exitCode?: number; time?: string };
  lastCheckpoint?: { name?: string; uri?: string; step?: number; digest?: string; time?: string };
  resumedFrom?: string;
  worldSize?: number;
  workers?: { ready?: number; total?: number };
  hyperparameters?: { batchSize?: number; learningRate?: number; maxCaptionLength?: number; vocabularySize?: number };
  backend?: string;
  progress?: { stage: TrainingStage; summary: string; percent?: number; etaSeconds?: number; eta?: string; updateTime: string };
  outputURI?: string;
  reportURI?: string;
  startTime?: string;
  completionTime?: string;
}

export interface CaptionTrainingRun {
  apiVersion: 'captionrun.dev/v1alpha1';
  kind: 'CaptionTrainingRun';
  metadata: { name: string; namespace?: string; [key: string]: unknown };
  spec: CaptionTrainingRunSpec;
  status?: CaptionTrainingRunStatus;
}
