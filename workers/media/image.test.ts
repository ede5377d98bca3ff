import { describe, expect, it } from 'vitest';
import { isImageType, mediaTypeOf, sniffImage } from './image';

const fromBase64 = (b64: string) => Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
const bytes = (...parts: (number[] | string)[]) =>
  new Uint8Array(parts.flatMap((p) => (typeof p === 'string' ? [...p].map((ch) => ch.charCodeAt(0)) : p)));

// Well-known real 1x1 images (the WebP trio is the classic feature-detection set).
const PNG_1X1 = fromBase64('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==');
const GIF_1X1 = fromBase64('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7');
const WEBP_LOSSY = fromBase64('UklGRiIAAABXRUJQVlA4IBYAAAAwAQCdASoBAAEADsD+JaQAA3AAAAAA');
const WEBP_LOSSLESS = fromBase64('UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==');
const WEBP_EXTENDED = fromBase64(
  'UklGRkoAAABXRUJQVlA4WAoAAAAQAAAAAAAAAAAAQUxQSAwAAAARBxAR/Q9ERP8DAABWUDggGAAAABQBAJ0BKgEAAQAAAP4AAA3AAP7mtQAAAA==',
);

/** A JPEG header: SOI, JFIF APP0, fill bytes, a comment, SOF2 (progressive) 640x480, SOS, EOI. */
const JPEG_640X480 = bytes(
  [0xff, 0xd8],
  [0xff, 0xe0, 0x00, 0x10],
  'JFIF',
  [0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00],
  [0xff, 0xff],
  [0xff, 0xfe, 0x00, 0x05],
  'hi!',
  [0xff, 0xc2, 0x00, 0x0b, 0x08, 0x01, 0xe0, 0x02, 0x80, 0x01, 0x01, 0x11, 0x00],
  [0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00, 0x12, 0x34],
  [0xff, 0xd9],
);

const ftyp = (major: string, ...compatible: string[]) => {
  const size = 16 + 4 * compatible.length;
  return bytes([0, 0, 0, size], 'ftyp', major, [0, 0, 0, 0], ...compatible);
};

describe('sniffImage', () => {
  it('reads PNG dimensions from IHDR', () => {
    expect(sniffImage(PNG_1X1)).toEqual({ type: 'image/png', width: 1, height: 1 });
  });

  it('reads GIF dimensions from the logical screen', () => {
    expect(sniffImage(GIF_1X1)).toEqual({ type: 'image/gif', width: 1, height: 1 });
    const gif87 = bytes('GIF87a', [0x20, 0x03, 0x58, 0x02, 0, 0, 0]);
    expect(sniffImage(gif87)).toEqual({ type: 'image/gif', width: 800, height: 600 });
  });

  it('walks JPEG segments to the start-of-frame marker', () => {
    expect(sniffImage(JPEG_640X480)).toEqual({ type: 'image/jpeg', width: 640, height: 480 });
  });

  it('recognises a JPEG without a frame header but reports no size', () => {
    expect(sniffImage(bytes([0xff, 0xd8, 0xff, 0xda, 0x00, 0x08]))).toEqual({ type: 'image/jpeg', width: null, height: null });
    // A truncated segment must not read past the end.
    expect(sniffImage(bytes([0xff, 0xd8, 0xff, 0xc0, 0x00, 0x11, 0x08]))).toEqual({ type: 'image/jpeg', width: null, height: null });
  });

  it('reads WebP dimensions from VP8, VP8L and VP8X', () => {
    expect(sniffImage(WEBP_LOSSY)).toEqual({ type: 'image/webp', width: 1, height: 1 });
    expect(sniffImage(WEBP_LOSSLESS)).toEqual({ type: 'image/webp', width: 1, height: 1 });
    expect(sniffImage(WEBP_EXTENDED)).toEqual({ type: 'image/webp', width: 1, height: 1 });
  });

  it('reads a large VP8X canvas', () => {
    const vp8x = bytes('RIFF', [0, 0, 0, 0], 'WEBP', 'VP8X', [10, 0, 0, 0], [0, 0, 0, 0], [0x7f, 0x07, 0x00], [0x37, 0x04, 0x00]);
    expect(sniffImage(vp8x)).toEqual({ type: 'image/webp', width: 1920, height: 1080 });
  });

  it('recognises AVIF by its ftyp brands, without dimensions', () => {
    expect(sniffImage(ftyp('avif', 'avif', 'mif1', 'miaf'))).toEqual({ type: 'image/avif', width: null, height: null });
    expect(sniffImage(ftyp('mif1', 'avif'))).toEqual({ type: 'image/avif', width: null, height: null });
  });

  it('does not take HEIC, text or nothing for an accepted image', () => {
    expect(sniffImage(ftyp('heic', 'mif1', 'heic'))).toBeNull();
    expect(sniffImage(new TextEncoder().encode('<html><script>alert(1)</script></html>'))).toBeNull();
    expect(sniffImage(new Uint8Array())).toBeNull();
  });

  it('reports impossible dimensions as unknown rather than storing them', () => {
    const zeroPng = PNG_1X1.slice();
    zeroPng.set([0, 0, 0, 0], 16);
    expect(sniffImage(zeroPng)).toEqual({ type: 'image/png', width: null, height: 1 });
  });

  it('reads a view into a larger buffer at its own offset', () => {
    const padded = new Uint8Array(PNG_1X1.length + 7);
    padded.set(PNG_1X1, 7);
    expect(sniffImage(padded.subarray(7))).toEqual({ type: 'image/png', width: 1, height: 1 });
  });
});

describe('content types', () => {
  it('normalises parameters and case', () => {
    expect(mediaTypeOf('Image/PNG; charset=binary')).toBe('image/png');
    expect(mediaTypeOf(undefined)).toBe('');
  });

  it('accepts only the allow-listed types', () => {
    expect(isImageType('image/webp')).toBe(true);
    expect(isImageType('image/svg+xml')).toBe(false);
    expect(isImageType('text/plain')).toBe(false);
  });
});
