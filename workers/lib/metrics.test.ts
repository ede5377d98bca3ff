/**
 * The Analytics Engine counters: no-ops without the binding, never throwing,
 * and the data point layout docs/OPERATIONS.md queries. The dataset is a
 * write-only Cloudflare sink with nothing to read back locally (miniflare
 * drops the writes), so a recording stand-in takes its place here; the
 * binding miniflare gives from wrangler.toml is checked to accept the same
 * calls.
 */
import { env } from 'cloudflare:workers';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_POINTS_PER_CALL, countCacheRead, countCheckoutOutcome, countOrder, countOutOfStock, type MetricsEnv } from './metrics';

/** A stand-in dataset that records what is written. */
function recorder() {
  const points: AnalyticsEngineDataPoint[] = [];
  const METRICS = { writeDataPoint: (p?: AnalyticsEngineDataPoint) => void points.push(p!) } as AnalyticsEngineDataset;
  return { env: { METRICS } satisfies MetricsEnv, points };
}

const everyCounter = (e: MetricsEnv | undefined) => {
  countOrder(e, { region: 'sg', currency: 'SGD', totalAmount: 2400, units: 2, lines: 1, status: 'confirmed' });
  countCheckoutOutcome(e, { region: 'sg', outcome: 'failed', reason: 'payment_declined', latencyMs: 850 });
  countCacheRead(e, { tier: 'kv', document: 'product', region: 'sg', ms: 3 });
  countOutOfStock(e, { region: 'sg', kind: 'refused', source: 'reserve', variants: [{ variantId: 'var_1', units: 2 }] });
};

afterEach(() => {
  vi.restoreAllMocks();
});

describe('metrics without a binding', () => {
  it('every counter is a no-op: no env, an env without METRICS, an empty METRICS', () => {
    const warn = vi.spyOn(console, 'warn');
    expect(() => everyCounter(undefined)).not.toThrow();
    expect(() => everyCounter({})).not.toThrow();
    expect(() => everyCounter({ METRICS: undefined })).not.toThrow();
    expect(() => everyCounter({ METRICS: {} as AnalyticsEngineDataset })).not.toThrow();
    expect(warn).not.toHaveBeenCalled();
  });

  it('never throws, even when the binding does (one warning line per failed write)', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const broken = {
      METRICS: {
        writeDataPoint: () => {
          throw new Error('dataset unavailable');
        },
      } as AnalyticsEngineDataset,
    };
    expect(() => everyCounter(broken)).not.toThrow();
    expect(warn).toHaveBeenCalledTimes(4);
    expect(JSON.parse(String(warn.mock.calls[0]![0]))).toMatchObject({ level: 'warn', msg: 'metric not written', metric: 'order' });
    // A caller passing nonsense still gets no exception.
    expect(() => countOutOfStock(broken, { region: 'sg', kind: 'refused', source: 'x', variants: null as never })).not.toThrow();
  });

  it('the binding miniflare gives from wrangler.toml takes every counter (and drops the writes)', () => {
    expect(typeof env.METRICS?.writeDataPoint).toBe('function');
    expect(() => everyCounter(env)).not.toThrow();
  });
});

describe('metrics with a binding: the data points', () => {
  it('order: index and blob1 "order", region, currency, status; 1, total, units, lines', () => {
    const { env: e, points } = recorder();
    countOrder(e, { region: 'my', currency: 'MYR', totalAmount: 15990, units: 3, lines: 2, status: 'confirmed' });
    expect(points).toEqual([{ indexes: ['order'], blobs: ['order', 'my', 'MYR', 'confirmed'], doubles: [1, 15990, 3, 2] }]);
  });

  it('checkout: region, outcome, reason (empty when none); 1, latency (0 when not given)', () => {
    const { env: e, points } = recorder();
    countCheckoutOutcome(e, { region: 'id', outcome: 'failed', reason: 'out_of_stock', latencyMs: 1234 });
    countCheckoutOutcome(e, { region: 'id', outcome: 'confirmed' });
    expect(points).toEqual([
      { indexes: ['checkout'], blobs: ['checkout', 'id', 'failed', 'out_of_stock'], doubles: [1, 1234] },
      { indexes: ['checkout'], blobs: ['checkout', 'id', 'confirmed', ''], doubles: [1, 0] },
    ]);
  });

  it('cache_read: tier, document, region; 1, ms', () => {
    const { env: e, points } = recorder();
    countCacheRead(e, { tier: 'origin', document: 'search', region: 'vn', ms: 41 });
    expect(points).toEqual([{ indexes: ['cache_read'], blobs: ['cache_read', 'origin', 'search', 'vn'], doubles: [1, 41] }]);
  });

  it('out_of_stock: one point per variant (region, kind, variant, source; 1, units), at most 25 per call', () => {
    const { env: e, points } = recorder();
    countOutOfStock(e, { region: 'ph', kind: 'sold_out', source: 'order_events', variants: [{ variantId: 'var_a' }, { variantId: 'var_b', units: 4 }] });
    expect(points).toEqual([
      { indexes: ['out_of_stock'], blobs: ['out_of_stock', 'ph', 'sold_out', 'var_a', 'order_events'], doubles: [1, 0] },
      { indexes: ['out_of_stock'], blobs: ['out_of_stock', 'ph', 'sold_out', 'var_b', 'order_events'], doubles: [1, 4] },
    ]);
    points.length = 0;
    countOutOfStock(e, { region: 'ph', kind: 'refused', source: 'reserve', variants: Array.from({ length: 100 }, (_, i) => ({ variantId: `var_${i}`, units: 1 })) });
    expect(points).toHaveLength(MAX_POINTS_PER_CALL);
  });

  it('keeps blobs short and doubles finite', () => {
    const { env: e, points } = recorder();
    countCheckoutOutcome(e, { region: 'sg', outcome: 'failed', reason: 'x'.repeat(5_000), latencyMs: Number.NaN });
    expect(points[0]!.blobs![3]).toHaveLength(200);
    expect(points[0]!.doubles).toEqual([1, 0]);
  });
});
