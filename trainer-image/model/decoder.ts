// The caption decoder ("Show, Attend and Tell" family), read top to bottom:
//   1. parameters: region projection, embedding, initial-state projections, attention, one recurrent cell,
//      output projection;
//   2. projectRegions: each encoder region (2048 channels for InceptionV3) -> relu(f W_p + b_p) of
//      embeddingDim, once per image, as the TensorFlow image-captioning tutorial's CNN_Encoder does: every
//      later matmul then works on embeddingDim instead of 2048 channels;
//   3. initialState: h0 (and c0) from the mean of the projected regions;
//   4. advance: one word's input gates in (wordGates), the new state, o_t and attention weights over the
//      regions out;
//      outputLogits: o_t -> next-word logits.
// Two orderings, after the papers the attentions come from:
//   bahdanau: attend with h_{t-1};  h_t = cell([e_t; context], s_{t-1});  o_t = h_t
//   luong:    h_t = cell([e_t; o_{t-1}], s_{t-1});  attend with h_t;  o_t = tanh(W_c [h_t; context])
//             (o_{t-1} fed back is Luong et al.'s "input feeding": the cell knows where it looked last)
//   logits = dropout(o_t) W_out + b_out
// Parameters are plain named tensors (no layers API) so that training, gradient checkpointing, beam search
// and checkpoints all see the same flat, ordered list.
import { tf } from '../backend.js';
import { CounterRng, Stream } from '../util/rng.js';
import { attend, attentionKeys, attentionShapes, keyParameterNames, type AttentionKind } from './attention.js';
import { cellShapes, cellStep, stateSize, type CellKind, type Tensors } from './decoder-cells.js';

export interface DecoderConfig {
  cell: CellKind;
  attention: AttentionKind;
  vocabSize: number;
  embeddingDim: number;
  hiddenDim: number;
  attentionDim: number;
  /** Channels of one encoder region (2048 for InceptionV3, 1024 for DenseNet121). */
  featureDim: number;
  dropout: number;
}

/** Parameter names and shapes in a fixed order: the order of gradients, Adam moments and checkpoint files. */
export function parameterShapes(cfg: DecoderConfig): [string, number[]][] {
  const region = cfg.embeddingDim;
  const cellInput = cfg.embeddingDim + (cfg.attention === 'bahdanau' ? region : cfg.hiddenDim);
  const shapes: Record<string, number[]> = {
    'proj.W': [cfg.featureDim, region],
    'proj.b': [region],
    embedding: [cfg.vocabSize, cfg.embeddingDim],
    'init.Wh': [region, cfg.hiddenDim],
    'init.bh': [cfg.hiddenDim],
    ...(cfg.cell === 'lstm' ? { 'init.Wc': [region, cfg.hiddenDim], 'init.bc': [cfg.hiddenDim] } : {}),
    ...attentionShapes(cfg.attention, region, cfg.hiddenDim, cfg.attentionDim),
    ...cellShapes(cfg.cell, 'cell', cellInput, cfg.hiddenDim),
    ...(cfg.attention === 'luong' ? { 'luong.Wc': [cfg.hiddenDim + region, cfg.hiddenDim] } : {}),
    'out.W': [cfg.hiddenDim, cfg.vocabSize],
    'out.b': [cfg.vocabSize],
  };
  return Object.entries(shapes);
}

/**
 * The tensors advance() reads: the per-step parameters (not the per-image projection, initial-state or
 * attention-key ones), with cell.Wx split once into its word rows and its other rows (see wordGates).
 * Training passes these into each block, so the split's gradient is taken once per loss, not once per step.
 */
export function stepParameters(cfg: DecoderConfig, p: Tensors): Tensors {
  const perImage = new Set(keyParameterNames(cfg.attention));
  const out: Tensors = {};
  for (const [name] of parameterShapes(cfg)) {
    if (name.startsWith('init.') || name.startsWith('proj.') || perImage.has(name)) continue;
    if (name !== 'cell.Wx') {
      out[name] = p[name] as tf.Tensor;
      continue;
    }
    const wx = p[name] as tf.Tensor2D;
    out['cell.Wx.word'] = tf.slice(wx, [0, 0], [cfg.embeddingDim, -1]);
    out['cell.Wx.rest'] = tf.slice(wx, [cfg.embeddingDim, 0], [-1, -1]);
  }
  return out;
}

/**
 * Seeded initial values: Glorot-uniform matrices, zero biases (LSTM forget gate +1), N(0, 0.1) embedding.
 * Drawn on the host from the counter RNG so the same seed gives the same bytes on every backend.
 */
export function initialValues(cfg: DecoderConfig, seed: number): Map<string, Float32Array> {
  const values = new Map<string, Float32Array>();
  parameterShapes(cfg).forEach(([name, shape], index) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    const rng = new CounterRng(seed, Stream.Init, index);
    if (name === 'embedding') {
      for (let i = 0; i < size; i++) data[i] = 0.1 * rng.normal();
    } else if (shape.length === 2) {
      const limit = Math.sqrt(6 / ((shape[0] as number) + (shape[1] as number)));
      for (let i = 0; i < size; i++) data[i] = (2 * rng.uniform() - 1) * limit;
    } else if (name === 'cell.b' && cfg.cell === 'lstm') {
      data.fill(1, cfg.hiddenDim, 2 * cfg.hiddenDim);
    }
    values.set(name, data);
  });
  return values;
}

export interface Decoder {
  cfg: DecoderConfig;
  /** Trainable parameters, in parameterShapes order. */
  params: Map<string, tf.Variable>;
}

// tfjs variable names must be unique per process; tests and benches hold several decoders at once.
let instances = 0;

export function createDecoder(cfg: DecoderConfig, values: Map<string, Float32Array>): Decoder {
  const instance = ++instances;
  const params = new Map<string, tf.Variable>();
  for (const [name, shape] of parameterShapes(cfg)) {
    const data = values.get(name);
    if (!data) throw new Error(`decoder parameter ${name} has no value`);
    // tidy disposes the initial tensor: a variable shares its data, and the tensor would otherwise keep that
    // data alive after disposeDecoder().
    params.set(name, tf.tidy(() => tf.variable(tf.tensor(data, shape, 'float32'), true, `decoder${instance}/${name}`)));
  }
  return { cfg, params };
}

export function disposeDecoder(decoder: Decoder): void {
  for (const v of decoder.params.values()) v.dispose();
}

/**
 * Embedding lookup: a gather forward; backward, the rows' gradients summed per word id. TensorFlow's
 * UnsortedSegmentSum does that sum; the wasm backend lacks the kernel (so tf.gather's own gradient fails
 * there), and there it is one matmul, one-hot(ids)^T x dy.
 */
const lookup = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [embedding, ids, save] = args as [tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
  save([embedding, ids]);
  return {
    value: tf.gather(embedding, tf.cast(ids, 'int32')),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], [table, saved]: tf.Tensor[]) => {
      const vocab = (table as tf.Tensor).shape[0] as number;
      const grad = tf.getKernel('UnsortedSegmentSum', tf.getBackend())
        ? tf.unsortedSegmentSum(dy as tf.Tensor2D, tf.cast(saved as tf.Tensor1D, 'int32'), vocab)
        : tf.matMul(oneHot(saved as tf.Tensor1D, vocab), dy as tf.Tensor2D, true, false);
      return [grad, tf.zerosLike(saved as tf.Tensor)];
    },
  };
});

/** Embedding rows of (float or int) word ids: [ids] -> [ids, embeddingDim]. */
export function embed(p: Tensors, tokens: tf.Tensor1D): tf.Tensor2D {
  return lookup(p.embedding as tf.Tensor2D, tokens) as tf.Tensor2D;
}

/**
 * Float32 one-hot rows for (float or int) ids. On wasm built as int32 and cast: its OneHot kernel ignores a
 * float32 dtype and writes integer bits into a float32 tensor (tfjs 4.22).
 */
export function oneHot(ids: tf.Tensor1D, depth: number): tf.Tensor2D {
  const rows = tf.cast(ids, 'int32') as tf.Tensor1D;
  if (tf.getBackend() === 'wasm') return tf.cast(tf.oneHot(rows, depth), 'float32') as tf.Tensor2D;
  return tf.oneHot(rows, depth, 1, 0, 'float32') as tf.Tensor2D;
}

/** Encoder regions [batch, regions, featureDim] -> relu(f W_p + b_p): [batch, regions, embeddingDim]. */
export function projectRegions(p: Tensors, features: tf.Tensor3D): tf.Tensor3D {
  const [batch, regions, channels] = features.shape;
  const flat = tf.reshape(features, [batch * regions, channels]) as tf.Tensor2D;
  return tf.reshape(tf.relu(tf.add(tf.matMul(flat, p['proj.W'] as tf.Tensor2D), p['proj.b'] as tf.Tensor)), [batch, regions, -1]);
}

/** h0 (and c0) = tanh(mean over the projected regions x W + b). */
export function initialState(cfg: DecoderConfig, p: Tensors, regions: tf.Tensor3D): tf.Tensor2D[] {
  const mean = tf.mean(regions, 1) as tf.Tensor2D;
  const h = tf.tanh(tf.add(tf.matMul(mean, p['init.Wh'] as tf.Tensor2D), p['init.bh'] as tf.Tensor)) as tf.Tensor2D;
  const state = [h];
  if (cfg.cell === 'lstm') state.push(tf.tanh(tf.add(tf.matMul(mean, p['init.Wc'] as tf.Tensor2D), p['init.bc'] as tf.Tensor)) as tf.Tensor2D);
  // Luong's fed-back attentional vector starts at zero: nothing has been attended yet.
  if (cfg.attention === 'luong') state.push(tf.zerosLike(h));
  return state;
}

export function precomputeKeys(cfg: DecoderConfig, p: Tensors, regions: tf.Tensor3D): tf.Tensor3D {
  return attentionKeys(cfg.attention, p, regions);
}

/**
 * The input word's share of the cell's input pre-activation: e Wx[:embeddingDim] + b, [rows, gates * hidden]
 * (`sp` from stepParameters). It depends on the word alone, so training computes it for every step of a block
 * in one matmul; each step then adds only the recurrent part of its input (the attention context, or
 * Luong's fed-back vector) times the other rows of Wx.
 */
export function wordGates(sp: Tensors, e: tf.Tensor2D): tf.Tensor2D {
  return tf.add(tf.matMul(e, sp['cell.Wx.word'] as tf.Tensor2D), sp['cell.b'] as tf.Tensor) as tf.Tensor2D;
}

export interface Advanced {
  state: tf.Tensor2D[];
  /** o_t, the vector the output projection reads: [batch, hidden]. */
  out: tf.Tensor2D;
  alpha: tf.Tensor2D;
}

/**
 * One recurrent step from the input word's gates (`wg`, wordGates) over projected regions (projectRegions)
 * and their attention keys (precomputeKeys); `sp` from stepParameters. The output projection is left to the
 * caller: training applies it to every step of a block at once, decoding to one step at a time.
 */
export function advance(cfg: DecoderConfig, sp: Tensors, regions: tf.Tensor3D, keys: tf.Tensor3D, state: tf.Tensor2D[], wg: tf.Tensor2D): Advanced {
  const restGates = (x: tf.Tensor2D): tf.Tensor2D => tf.add(wg, tf.matMul(x, sp['cell.Wx.rest'] as tf.Tensor2D));
  if (cfg.attention === 'bahdanau') {
    const a = attend('bahdanau', sp, regions, keys, state[0] as tf.Tensor2D);
    const next = cellStep(cfg.cell, sp, 'cell', restGates(a.context), state);
    return { state: next, out: next[0] as tf.Tensor2D, alpha: a.alpha };
  }
  const fedBack = state[state.length - 1] as tf.Tensor2D;
  const cellNext = cellStep(cfg.cell, sp, 'cell', restGates(fedBack), state.slice(0, -1));
  const a = attend('luong', sp, regions, keys, cellNext[0] as tf.Tensor2D);
  const out = tf.tanh(tf.matMul(tf.concat([cellNext[0] as tf.Tensor2D, a.context], 1), sp['luong.Wc'] as tf.Tensor2D)) as tf.Tensor2D;
  return { state: [...cellNext, out], out, alpha: a.alpha };
}

/** Next-word logits for any number of output vectors: [rows, hidden] -> [rows, vocab]. */
export function outputLogits(p: Tensors, out: tf.Tensor2D): tf.Tensor2D {
  return tf.add(tf.matMul(out, p['out.W'] as tf.Tensor2D), p['out.b'] as tf.Tensor) as tf.Tensor2D;
}

export interface StepResult extends Omit<Advanced, 'out'> {
  logits: tf.Tensor2D;
}

/** One decoding step: word ids in, the new state, next-word logits and attention weights out; `sp` from stepParameters. */
export function step(cfg: DecoderConfig, sp: Tensors, regions: tf.Tensor3D, keys: tf.Tensor3D, state: tf.Tensor2D[], tokens: tf.Tensor1D): StepResult {
  const r = advance(cfg, sp, regions, keys, state, wordGates(sp, embed(sp, tokens)));
  return { state: r.state, logits: outputLogits(sp, r.out), alpha: r.alpha };
}

/** [batch, hidden] tensors in the decoder state: the cell's, plus Luong's fed-back attentional vector. */
export function numStateTensors(cfg: DecoderConfig): number {
  return stateSize(cfg.cell) + (cfg.attention === 'luong' ? 1 : 0);
}

/** The parameters as a name -> tensor record (what step() and friends read). */
export function paramRecord(decoder: Decoder): Tensors {
  return Object.fromEntries(decoder.params);
}
