// Attention heat maps: one generated word's weights over the encoder's rows x cols regions, upsampled to the
// image's size by bilinear interpolation between region centres, and blended over the image relative to the
// word's own largest weight: weakly attended pixels are dimmed, strongly attended ones tinted along a
// purple -> red -> yellow scale. Rendered with sharp into PNG bytes of exactly the image's size.
import sharp from 'sharp';

/** Long side of the images the report shows; larger images are scaled down first. */
export const MAX_IMAGE_SIDE = 224;

export interface Grid {
  rows: number;
  cols: number;
}

export interface DecodedImage {
  width: number;
  height: number;
  /** RGB, 3 bytes a pixel, row-major. */
  pixels: Buffer;
}

/** Decodes an image (PNG, JPEG, WebP) to RGB, flattened on black and scaled to at most MAX_IMAGE_SIDE. */
export async function decodeImage(bytes: Uint8Array): Promise<DecodedImage> {
  const { data, info } = await sharp(bytes)
    .resize({ width: MAX_IMAGE_SIDE, height: MAX_IMAGE_SIDE, fit: 'inside', withoutEnlargement: true })
    .flatten({ background: { r: 0, g: 0, b: 0 } })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, pixels: data };
}

/**
 * Bilinear upsampling of a row-major rows x cols grid to width x height: each region's weight sits at its
 * centre and pixels between centres interpolate; pixels outside the outermost centres take the edge value.
 */
export function upsampleBilinear(weights: readonly number[], grid: Grid, width: number, height: number): Float32Array {
  const { rows, cols } = grid;
  if (weights.length !== rows * cols) throw new Error(`${weights.length} weights for a ${rows}x${cols} grid`);
  const out = new Float32Array(width * height);
  const at = (r: number, c: number): number => weights[r * cols + c] ?? 0;
  for (let y = 0; y < height; y++) {
    const gy = Math.min(rows - 1, Math.max(0, ((y + 0.5) / height) * rows - 0.5));
    const r0 = Math.floor(gy);
    const r1 = Math.min(rows - 1, r0 + 1);
    const fy = gy - r0;
    for (let x = 0; x < width; x++) {
      const gx = Math.min(cols - 1, Math.max(0, ((x + 0.5) / width) * cols - 0.5));
      const c0 = Math.floor(gx);
      const c1 = Math.min(cols - 1, c0 + 1);
      const fx = gx - c0;
      const top = at(r0, c0) * (1 - fx) + at(r0, c1) * fx;
      const bottom = at(r1, c0) * (1 - fx) + at(r1, c1) * fx;
      out[y * width + x] = top * (1 - fy) + bottom * fy;
    }
  }
  return out;
}

const STOPS: ReadonlyArray<readonly [number, readonly [number, number, number]]> = [
  [0, [48, 18, 110]],
  [0.35, [196, 32, 70]],
  [0.7, [255, 135, 20]],
  [1, [255, 240, 70]],
];

/** The heat colour of v in 0..1. */
export function heatColour(v: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, v));
  for (let i = 1; i < STOPS.length; i++) {
    const [p1, c1] = STOPS[i] as (typeof STOPS)[number];
    const [p0, c0] = STOPS[i - 1] as (typeof STOPS)[number];
    if (x <= p1) {
      const f = (x - p0) / (p1 - p0);
      return [c0[0] + (c1[0] - c0[0]) * f, c0[1] + (c1[1] - c0[1]) * f, c0[2] + (c1[2] - c0[2]) * f];
    }
  }
  const last = STOPS[STOPS.length - 1] as (typeof STOPS)[number];
  return [...last[1]];
}

/**
 * The blend, as RGB bytes of the image's size. With w a pixel's upsampled weight and min / max the word's
 * smallest and largest region weights: the pixel is dimmed to 0.3 + 0.7 * w / max of its brightness and
 * tinted with heatColour(u) at opacity 0.6 * u, where u = (w - min) / max. A word that attends everywhere
 * alike leaves the image as it is; one that attends to one region lights that region and darkens the rest.
 */
export function blendPixels(image: DecodedImage, weights: readonly number[], grid: Grid): Buffer {
  const clipped = weights.map((w) => (Number.isFinite(w) ? Math.max(0, w) : 0));
  const max = Math.max(...clipped);
  const min = Math.min(...clipped);
  const heat = upsampleBilinear(clipped, grid, image.width, image.height);
  const out = Buffer.alloc(image.width * image.height * 3);
  for (let i = 0; i < heat.length; i++) {
    const w = heat[i] ?? 0;
    const rel = max > 0 ? w / max : 1;
    const u = max > 0 ? Math.max(0, (w - min) / max) : 0;
    const [hr, hg, hb] = heatColour(u);
    const dim = 0.3 + 0.7 * rel;
    const alpha = 0.6 * u;
    const o = i * 3;
    out[o] = Math.round((image.pixels[o] ?? 0) * dim * (1 - alpha) + hr * alpha);
    out[o + 1] = Math.round((image.pixels[o + 1] ?? 0) * dim * (1 - alpha) + hg * alpha);
    out[o + 2] = Math.round((image.pixels[o + 2] ?? 0) * dim * (1 - alpha) + hb * alpha);
  }
  return out;
}

/**
 * PNG bytes of the image with one word's attention blended over it; the PNG has the (decoded) image's size.
 * A report holds one per generated word, so these are palette PNGs (256 colours, dithered): about a third
 * of the bytes of full-colour ones, with no difference to see at the size the report shows them.
 */
export async function attentionOverlay(image: DecodedImage, weights: readonly number[], grid: Grid): Promise<Buffer> {
  return toPng(blendPixels(image, weights, grid), image.width, image.height, { palette: true });
}

export async function toPng(rgb: Buffer, width: number, height: number, options: { palette?: boolean } = {}): Promise<Buffer> {
  return sharp(rgb, { raw: { width, height, channels: 3 } })
    .png(options.palette ? { palette: true, quality: 90, effort: 7, compressionLevel: 9 } : { compressionLevel: 9, adaptiveFiltering: true })
    .toBuffer();
}

/** A horizontal bar of the colour scale, 0 at the left, for the report's legend. */
export async function colourScalePng(width = 160, height = 10): Promise<Buffer> {
  const rgb = Buffer.alloc(width * height * 3);
  for (let x = 0; x < width; x++) {
    const [r, g, b] = heatColour(x / (width - 1));
    for (let y = 0; y < height; y++) rgb.set([Math.round(r), Math.round(g), Math.round(b)], (y * width + x) * 3);
  }
  return toPng(rgb, width, height);
}
