/**
 * Image sniffing for uploads: which format the bytes really are (from their
 * magic numbers, not from what the client declared) and, where the header
 * states it cheaply, the pixel size.
 *
 * Nothing here decodes pixels. The point is to refuse a file that is not the
 * image it claims to be (a renamed HTML page served back as `image/png` is a
 * stored-XSS vector on browsers that sniff) and to record dimensions so pages
 * can reserve layout space without fetching the image.
 */

/** The image formats the storefront accepts, by MIME type. */
export const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'image/avif', 'image/gif'] as const;

/** One of {@link IMAGE_TYPES}. */
export type ImageType = (typeof IMAGE_TYPES)[number];

/** File extension used in storage keys for each accepted type. */
export const IMAGE_EXTENSIONS: Record<ImageType, string> = {
  'image/jpeg': 'jpg',
  'image/png': 'png',
  'image/webp': 'webp',
  'image/avif': 'avif',
  'image/gif': 'gif',
};

/** What {@link sniffImage} found. Dimensions are null when the header does not give them cheaply. */
export interface ImageInfo {
  type: ImageType;
  width: number | null;
  height: number | null;
}

/** Whether `value` (already lower-cased, without parameters) is an accepted type. */
export function isImageType(value: string): value is ImageType {
  return (IMAGE_TYPES as readonly string[]).includes(value);
}

/**
 * The bare MIME type of a `Content-Type` value: parameters dropped,
 * lower-cased, so `Image/PNG; charset=binary` compares equal to `image/png`.
 */
export function mediaTypeOf(contentType: string | null | undefined): string {
  return (contentType ?? '').split(';', 1)[0]!.trim().toLowerCase();
}

const ascii = (bytes: Uint8Array, offset: number, length: number): string =>
  offset + length <= bytes.length ? String.fromCharCode(...bytes.subarray(offset, offset + length)) : '';

const startsWith = (bytes: Uint8Array, prefix: readonly number[]): boolean =>
  bytes.length >= prefix.length && prefix.every((b, i) => bytes[i] === b);

// The media table requires positive dimensions and they are stored as int4:
// anything outside that range is a corrupt header, recorded as unknown.
const dimension = (n: number): number | null => (Number.isInteger(n) && n > 0 && n <= 0x7fff_ffff ? n : null);

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] as const;

function png(bytes: Uint8Array, view: DataView): ImageInfo {
  // IHDR must be the first chunk: length (4), type (4), width (4), height (4).
  if (ascii(bytes, 12, 4) !== 'IHDR' || bytes.length < 24) return { type: 'image/png', width: null, height: null };
  return { type: 'image/png', width: dimension(view.getUint32(16)), height: dimension(view.getUint32(20)) };
}

function gif(bytes: Uint8Array, view: DataView): ImageInfo {
  if (bytes.length < 10) return { type: 'image/gif', width: null, height: null };
  return { type: 'image/gif', width: dimension(view.getUint16(6, true)), height: dimension(view.getUint16(8, true)) };
}

/** Start-of-frame markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not. */
const isStartOfFrame = (marker: number): boolean =>
  marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;

function jpeg(bytes: Uint8Array, view: DataView): ImageInfo {
  const unknown: ImageInfo = { type: 'image/jpeg', width: null, height: null };
  let offset = 2;
  // Walk the marker segments until a frame header; bounded by the data, and
  // every step moves forward, so a hostile file cannot make this loop.
  while (offset + 4 <= bytes.length) {
    if (bytes[offset] !== 0xff) return unknown;
    const marker = bytes[offset + 1]!;
    // 0xFF fill bytes may pad between segments.
    if (marker === 0xff) {
      offset += 1;
      continue;
    }
    // Standalone markers (TEM, RSTn) have no length field.
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      offset += 2;
      continue;
    }
    // Start of scan or end of image before any frame header: no size to read.
    if (marker === 0xda || marker === 0xd9) return unknown;
    const length = view.getUint16(offset + 2);
    if (length < 2) return unknown;
    if (isStartOfFrame(marker)) {
      // Segment: length (2), precision (1), height (2), width (2).
      if (offset + 9 > bytes.length) return unknown;
      return { type: 'image/jpeg', height: dimension(view.getUint16(offset + 5)), width: dimension(view.getUint16(offset + 7)) };
    }
    offset += 2 + length;
  }
  return unknown;
}

function webp(bytes: Uint8Array, view: DataView): ImageInfo {
  const unknown: ImageInfo = { type: 'image/webp', width: null, height: null };
  const chunk = ascii(bytes, 12, 4);
  if (chunk === 'VP8 ' && bytes.length >= 30) {
    // Lossy: a key frame's start code 9D 01 2A, then 14-bit width and height (top 2 bits are scaling).
    if (bytes[23] !== 0x9d || bytes[24] !== 0x01 || bytes[25] !== 0x2a) return unknown;
    return { type: 'image/webp', width: dimension(view.getUint16(26, true) & 0x3fff), height: dimension(view.getUint16(28, true) & 0x3fff) };
  }
  if (chunk === 'VP8L' && bytes.length >= 25) {
    // Lossless: signature 0x2F, then width-1 and height-1 as two 14-bit fields, LSB first.
    if (bytes[20] !== 0x2f) return unknown;
    const bits = view.getUint32(21, true);
    return { type: 'image/webp', width: dimension((bits & 0x3fff) + 1), height: dimension(((bits >>> 14) & 0x3fff) + 1) };
  }
  if (chunk === 'VP8X' && bytes.length >= 30) {
    // Extended: canvas width-1 and height-1 as 24-bit little-endian integers.
    const u24 = (at: number) => bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16);
    return { type: 'image/webp', width: dimension(u24(24) + 1), height: dimension(u24(27) + 1) };
  }
  return unknown;
}

/**
 * AVIF is an ISO-BMFF file whose `ftyp` box names `avif` (still) or `avis`
 * (sequence) as its major or a compatible brand. HEIC shares the container,
 * so the brand check is what tells them apart.
 */
function isAvif(bytes: Uint8Array, view: DataView): boolean {
  if (bytes.length < 16 || ascii(bytes, 4, 4) !== 'ftyp') return false;
  const boxSize = Math.min(view.getUint32(0), bytes.length);
  const brands = [ascii(bytes, 8, 4)];
  // Skip minor_version (4 bytes) after the major brand.
  for (let at = 16; at + 4 <= boxSize; at += 4) brands.push(ascii(bytes, at, 4));
  return brands.some((b) => b === 'avif' || b === 'avis');
}

/**
 * Identifies an image from its first bytes. Returns null when the bytes are
 * none of {@link IMAGE_TYPES}. Dimensions come from the header for PNG, GIF,
 * JPEG (first start-of-frame segment) and WebP (VP8, VP8L, VP8X); AVIF keeps
 * its size in a nested `ispe` property whose association with the primary
 * item takes a real parser to get right, so it is reported as unknown.
 */
export function sniffImage(input: Uint8Array): ImageInfo | null {
  const view = new DataView(input.buffer, input.byteOffset, input.byteLength);
  if (startsWith(input, PNG_SIGNATURE)) return png(input, view);
  if (startsWith(input, [0xff, 0xd8, 0xff])) return jpeg(input, view);
  const gifMagic = ascii(input, 0, 6);
  if (gifMagic === 'GIF87a' || gifMagic === 'GIF89a') return gif(input, view);
  if (ascii(input, 0, 4) === 'RIFF' && ascii(input, 8, 4) === 'WEBP') return webp(input, view);
  if (isAvif(input, view)) return { type: 'image/avif', width: null, height: null };
  return null;
}
