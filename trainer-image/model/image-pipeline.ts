// Image decoding for the encoders: sharp decodes (JPEG/PNG/WebP...), applies EXIF orientation, converts to
// sRGB and stretches to the encoder's square input, as Keras's load_img(target_size) does. Each encoder
// then normalises the 0..255 pixels the way its weights expect (encoder.ts). Decoding is bounded to a few
// images in flight and one batch at a time, so memory stays at about one batch whatever the dataset size.
import sharp from 'sharp';
import { InvalidInputError } from '../../lib/errors.js';
import type { ImageSource } from '../data/dataset.js';

/** Decodes one image to size x size RGB bytes (row-major, channels last). Bad images are InvalidInputError. */
export async function decodeToRgb(src: ImageSource, size: number): Promise<Uint8Array> {
  try {
    const img =
      src.kind === 'raw'
        ? sharp(src.data, { raw: { width: src.width, height: src.height, channels: src.channels } })
        : // 'truncated' rejects cut-off files but tolerates the harmless warnings many camera JPEGs carry.
          sharp(src.data, { failOn: 'truncated' }).rotate();
    const { data, info } = await img
      .removeAlpha()
      .toColourspace('srgb')
      .resize(size, size, { fit: 'fill', kernel: 'cubic' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || data.length !== size * size * 3) throw new Error(`decoded to ${info.width}x${info.height}x${info.channels}`);
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } catch (err) {
    const file = src.kind === 'encoded' ? src.path : undefined;
    throw new InvalidInputError(`unreadable or truncated image: ${(err as Error).message}`, { file, cause: err });
  }
}

export interface BadImage {
  id: string;
  file?: string;
  message: string;
}

/**
 * Decodes sources into one batch of size x size x 3 bytes, at most `concurrency` at a time (sharp runs each on
 * libvips threads). Returns which input indexes made it in; the others are reported through onBad.
 */
export async function decodeBatch(
  sources: { id: string; src: ImageSource }[],
  size: number,
  onBad: (bad: BadImage) => void,
  concurrency = 4,
): Promise<{ indexes: number[]; pixels: Uint8Array }> {
  const frame = size * size * 3;
  const decoded: (Uint8Array | undefined)[] = new Array(sources.length);
  for (let i = 0; i < sources.length; i += concurrency) {
    await Promise.all(
      sources.slice(i, i + concurrency).map(async ({ id, src }, j) => {
        try {
          decoded[i + j] = await decodeToRgb(src, size);
        } catch (err) {
          const e = err as InvalidInputError;
          onBad({ id, file: e.file, message: e.message });
        }
      }),
    );
  }
  const indexes = decoded.flatMap((d, i) => (d === undefined ? [] : [i]));
  const pixels = new Uint8Array(indexes.length * frame);
  indexes.forEach((i, k) => pixels.set(decoded[i] as Uint8Array, k * frame));
  return { indexes, pixels };
}
