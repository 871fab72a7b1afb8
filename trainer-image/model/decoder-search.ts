// Caption generation: greedy decoding (a batch of images at once, for validation) and beam search (one
// image at a time, for final captions). Both return the attention weights of every emitted word so that
// attention maps can be drawn and checked against object boxes.
import { tf } from '../backend.js';
import type { Tensors } from './decoder-cells.js';
import { initialState, oneHot, precomputeKeys, projectRegions, step, stepParameters, type DecoderConfig } from './decoder.js';

export interface Caption {
  /** Word ids, without <start>, up to and excluding <end>. */
  tokens: number[];
  /** Attention weights over regions for each token in `tokens` (and not for <end>). */
  alphas: Float32Array[];
  /** Sum of the log-probabilities of the tokens and the final <end> (when emitted). */
  logProb: number;
}

export interface SearchOptions {
  startId: number;
  endId: number;
  /** Most words generated, <end> excluded. */
  maxLength: number;
}

export function greedyDecode(cfg: DecoderConfig, p: Tensors, features: tf.Tensor3D, opts: SearchOptions): Caption[] {
  const [batch, regions] = features.shape;
  const out: Caption[] = Array.from({ length: batch }, () => ({ tokens: [], alphas: [], logProb: 0 }));
  const done = new Array<boolean>(batch).fill(false);
  const projected = projectRegions(p, features);
  const keys = precomputeKeys(cfg, p, projected);
  const sp = stepParameters(cfg, p);
  let state = initialState(cfg, p, projected);
  let tokens = new Float32Array(batch).fill(opts.startId);
  for (let t = 0; t <= opts.maxLength && !done.every(Boolean); t++) {
    const [next, words, logps, alphas] = tf.tidy(() => {
      const r = step(cfg, sp, projected, keys, state, tf.tensor1d(tokens));
      const logp = tf.logSoftmax(r.logits);
      const best = tf.argMax(logp, 1);
      const bestLogp = tf.sum(tf.mul(logp, oneHot(best as tf.Tensor1D, cfg.vocabSize)), 1);
      return [r.state.map((s) => tf.keep(s)), best.dataSync(), bestLogp.dataSync(), r.alpha.dataSync()] as const;
    });
    state.forEach((s) => s.dispose());
    state = next;
    tokens = new Float32Array(batch);
    for (let b = 0; b < batch; b++) {
      const word = words[b] as number;
      tokens[b] = word;
      const caption = out[b] as Caption;
      if (done[b]) continue;
      caption.logProb += logps[b] as number;
      if (word === opts.endId || t === opts.maxLength) {
        done[b] = true;
        continue;
      }
      caption.tokens.push(word);
      caption.alphas.push(Float32Array.from(alphas.subarray(b * regions, (b + 1) * regions)));
    }
  }
  state.forEach((s) => s.dispose());
  tf.dispose([projected, keys, sp['cell.Wx.word'] as tf.Tensor, sp['cell.Wx.rest'] as tf.Tensor]);
  return out;
}

interface Hypothesis extends Caption {
  /** Row of this hypothesis in the batched decoder state. */
  row: number;
}

/**
 * Beam search for one image (features [1, regions, channels]). Finished hypotheses are ranked by their
 * total log-probability, as in Show, Attend and Tell; dividing by length made the quickstart's decoder
 * append invented "left of ..." clauses (validation BLEU-4 0.43 against greedy's 0.49).
 */
export function beamSearch(cfg: DecoderConfig, p: Tensors, features: tf.Tensor3D, beamSize: number, opts: SearchOptions): Caption {
  const regions = features.shape[1];
  const vocab = cfg.vocabSize;
  const projected = projectRegions(p, features);
  const keys1 = precomputeKeys(cfg, p, projected);
  const sp = stepParameters(cfg, p);
  let state = initialState(cfg, p, projected);
  let beams: Hypothesis[] = [{ tokens: [], alphas: [], logProb: 0, row: 0 }];
  const finished: Caption[] = [];
  for (let t = 0; t <= opts.maxLength && beams.length > 0; t++) {
    const rows = beams.map((b) => b.row);
    const inputs = beams.map((b) => (b.tokens.length === 0 ? opts.startId : (b.tokens[b.tokens.length - 1] as number)));
    const { next, logps, alphas } = tf.tidy(() => {
      const gathered = state.map((s) => tf.gather(s, rows));
      const k = beams.length;
      const feats = tf.tile(projected, [k, 1, 1]) as tf.Tensor3D;
      const keys = tf.tile(keys1, [k, 1, 1]) as tf.Tensor3D;
      const r = step(cfg, sp, feats, keys, gathered, tf.tensor1d(inputs));
      return { next: r.state.map((s) => tf.keep(s)), logps: tf.logSoftmax(r.logits).dataSync(), alphas: r.alpha.dataSync() };
    });
    state.forEach((s) => s.dispose());
    state = next;
    const candidates: { beam: number; word: number; logProb: number }[] = [];
    beams.forEach((b, i) => {
      for (let w = 0; w < vocab; w++) candidates.push({ beam: i, word: w, logProb: b.logProb + (logps[i * vocab + w] as number) });
    });
    candidates.sort((a, b) => b.logProb - a.logProb || a.beam - b.beam || a.word - b.word);
    const survivors: Hypothesis[] = [];
    for (const c of candidates) {
      if (survivors.length >= beamSize || finished.length >= beamSize) break;
      const parent = beams[c.beam] as Hypothesis;
      if (c.word === opts.endId || t === opts.maxLength) {
        finished.push({ tokens: parent.tokens, alphas: parent.alphas, logProb: c.logProb });
        continue;
      }
      const alpha = Float32Array.from(alphas.subarray(c.beam * regions, (c.beam + 1) * regions));
      survivors.push({ tokens: [...parent.tokens, c.word], alphas: [...parent.alphas, alpha], logProb: c.logProb, row: c.beam });
    }
    beams = finished.length >= beamSize ? [] : survivors;
  }
  state.forEach((s) => s.dispose());
  tf.dispose([projected, keys1, sp['cell.Wx.word'] as tf.Tensor, sp['cell.Wx.rest'] as tf.Tensor]);
  const best = [...finished].sort((a, b) => b.logProb - a.logProb)[0];
  if (!best) throw new Error('beam search finished no hypothesis');
  return best;
}
